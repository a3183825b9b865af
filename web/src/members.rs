//! The members of the active tenant and invitations to it. Every member
//! sees who belongs to the tenant; inviting, changing roles, removing and
//! revoking need USER_MANAGE, and only an owner makes or unmakes an owner.
//! The last owner is never removed or demoted (decided in the store, in one
//! transaction). An invitation is a link with a single-use random token, of
//! which only the SHA-256 is stored, shown once; it expires. Accepting one
//! either creates an account (password hashed with argon2id on the bounded
//! pool) or adds the signed-in person, and starts a new session in the
//! tenant. A member whose role changes or who is removed loses their
//! sessions in the tenant; an actor whose own role changes gets a new
//! session id. Every action is audited. Reads and writes the store.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::header::{HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::Duration;
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_model::secrets::SecretString;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::members::{InvitationRecord, MembershipChange, NewInvitation};
use zentralink_store::{StoreError, UserId};

use crate::AppState;
use crate::error::{Rendered, WebError};
use crate::pages::frame;
use crate::password::MAX_PASSWORD_BYTES;
use crate::roles::{Member, Permission, Role};
use crate::session::{
    Client, CsrfForm, Posted, SESSION_TTL, Signed, build_cookie, find_session, new_token,
    removal_cookie, request_cookie, start_session, token_sha256, tokens_match,
};

/// How long an invitation link stays valid.
pub const INVITATION_TTL: Duration = Duration::days(7);

/// The shortest password a new account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The cookie carrying the CSRF token of the form that accepts an
/// invitation without an account (there is no session yet to derive it from).
pub fn invitation_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-zl_invite"
    } else {
        "zl_invite"
    }
}

/// Inviting someone.
#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for InviteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Giving a member another role.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for RoleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Accepting an invitation: only the CSRF token when signed in; a name and
/// a password (twice) for a new account.
#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
    #[serde(default)]
    pub csrf: String,
}

pub(crate) fn header_value(v: &str) -> Result<HeaderValue, WebError> {
    HeaderValue::from_str(v).map_err(|e| WebError::Internal(format!("bad header value: {e}")))
}

/// A 303 to `to` that sets the cookies.
pub(crate) fn see_other(to: &str, cookies: &[String]) -> Result<Response, WebError> {
    let mut r = (StatusCode::SEE_OTHER, [(LOCATION, header_value(to)?)]).into_response();
    for c in cookies {
        r.headers_mut().append(SET_COOKIE, header_value(c)?);
    }
    Ok(r)
}

/// A page with its own status (kept as it is by the error-page layer).
pub(crate) fn page(status: StatusCode, html: String) -> Response {
    let mut r = (status, Html(html)).into_response();
    if !status.is_success() {
        r.extensions_mut().insert(Rendered);
    }
    r
}

fn event(member: &Member, action: &str, client: &Client) -> AuditEvent {
    AuditEvent::new(
        Some(member.tenant_id),
        Actor::User(member.session.user()),
        action,
    )
    .from_client(client.ip.clone(), client.user_agent.clone())
}

/// A new session for the same person in `tenant` (a privilege change gets
/// a new session id); the old one ends.
pub(crate) async fn rotate_session(
    state: &AppState,
    session: &Signed,
    tenant: Option<zentralink_store::TenantId>,
) -> Result<String, WebError> {
    let record = &session.0.record;
    state
        .store()
        .delete_session(record.user_id, record.id)
        .await?;
    let started = start_session(
        state,
        record.user_id,
        tenant,
        record.second_factor,
        SESSION_TTL,
    )
    .await?;
    Ok(started.set_cookie)
}

/// A normalised e-mail address, or why it is not one.
fn email_address(given: &str) -> Result<String, String> {
    let email = given.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(format!(
            "{:?} is not an e-mail address",
            zentralink_model::secrets::shorten(given.trim(), 64)
        ))
    }
}

#[derive(Debug, Serialize)]
struct MemberView {
    id: String,
    email: String,
    display_name: String,
    role: String,
    totp: bool,
    joined: String,
    you: bool,
}

#[derive(Debug, Serialize)]
struct InvitationView {
    id: String,
    email: String,
    role: String,
    invited_by: String,
    expires: String,
}

impl From<InvitationRecord> for InvitationView {
    fn from(i: InvitationRecord) -> Self {
        Self {
            id: i.id.to_string(),
            email: i.email,
            role: i.role,
            invited_by: i.invited_by.unwrap_or_else(|| "a former member".into()),
            expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
struct TenantChoice {
    slug: String,
    display_name: String,
    role: String,
    active: bool,
}

/// What the members page says besides the lists.
#[derive(Debug, Default)]
struct Notice {
    message: String,
    error: String,
    /// The invitation link just made: shown this once.
    link: Option<String>,
}

async fn members_page_with(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    notice: Notice,
) -> Result<Response, WebError> {
    let store = state.store();
    let me = member.session.user();
    let members: Vec<MemberView> = store
        .tenant_members(member.tenant_id)
        .await?
        .into_iter()
        .map(|m| MemberView {
            id: m.user_id.to_string(),
            email: m.email,
            display_name: m.display_name,
            role: m.role,
            totp: m.totp_enrolled,
            joined: m.joined_at.format("%Y-%m-%d").to_string(),
            you: m.user_id == me,
        })
        .collect();
    let manage = member.role.may(Permission::UserManage);
    let invitations: Vec<InvitationView> = if manage {
        store
            .open_invitations(member.tenant_id, state.now())
            .await?
            .into_iter()
            .map(InvitationView::from)
            .collect()
    } else {
        Vec::new()
    };
    let tenants: Vec<TenantChoice> = store
        .memberships_of(me)
        .await?
        .into_iter()
        .map(|m| TenantChoice {
            active: m.tenant_id == member.tenant_id,
            slug: m.slug,
            display_name: m.display_name,
            role: m.role,
        })
        .collect();
    // The roles this member may give: an owner any, anyone else all but OWNER.
    let assignable: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Owner || member.role == Role::Owner)
        .map(Role::as_str)
        .collect();
    let f = &member.frame;
    let html = state.templates().render(
        "members.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            members => members, invitations => invitations, tenants => tenants,
            manage => manage, is_owner => member.role == Role::Owner,
            tenant_manage => member.role.may(Permission::TenantManage),
            assignable => assignable, roles => Role::ALL.map(Role::as_str),
            message => notice.message, error => notice.error, link => notice.link,
        },
    )?;
    Ok(page(status, html))
}

/// GET /members: the tenant's members (any member), with the forms to
/// manage them for USER_MANAGE.
pub async fn members_page(
    State(state): State<AppState>,
    member: Member,
) -> Result<Response, WebError> {
    members_page_with(&state, &member, StatusCode::OK, Notice::default()).await
}

fn refused(error: impl Into<String>) -> Notice {
    Notice {
        error: error.into(),
        ..Notice::default()
    }
}

/// The address an invitation link is opened at: this service's, as the
/// browser named it.
fn invitation_link(state: &AppState, headers: &HeaderMap, token: &str) -> String {
    let scheme = if state.config().secure_cookies {
        "https"
    } else {
        "http"
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    });
    match host {
        Some(host) => format!("{scheme}://{host}/invitations/{token}"),
        None => format!("/invitations/{token}"),
    }
}

/// POST /members/invite: a new invitation link, shown once.
pub async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted<Signed, InviteForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    member.require(Permission::UserManage)?;
    let role: Role = form.role.parse()?;
    let email = match email_address(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return members_page_with(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(e),
            )
            .await;
        }
    };
    if role == Role::Owner && member.role != Role::Owner {
        return members_page_with(
            &state,
            &member,
            StatusCode::FORBIDDEN,
            refused("Only an owner may invite an owner."),
        )
        .await;
    }
    let store = state.store();
    let already = store
        .tenant_members(member.tenant_id)
        .await?
        .into_iter()
        .any(|m| m.email.eq_ignore_ascii_case(&email));
    if already {
        return members_page_with(
            &state,
            &member,
            StatusCode::CONFLICT,
            refused(format!(
                "{email} is a member already; change their role in the list instead."
            )),
        )
        .await;
    }
    let token = new_token()?;
    let now = state.now();
    let audit = event(&member, "invitation.created", &client)
        .meta("email", email.clone())
        .meta("role", role.as_str());
    store
        .create_invitation(
            member.tenant_id,
            &NewInvitation {
                token_sha256: &token_sha256(&token),
                email: &email,
                role: role.as_str(),
                invited_by: member.session.user(),
                now,
                expires_at: now + INVITATION_TTL,
            },
            audit,
        )
        .await?;
    let link = invitation_link(&state, &headers, &token);
    members_page_with(
        &state,
        &member,
        StatusCode::OK,
        Notice {
            message: format!(
                "Invitation for {email} as {role} made. Send them this link; it is shown only now, works once and expires in {} days.",
                INVITATION_TTL.num_days()
            ),
            link: Some(link),
            ..Notice::default()
        },
    )
    .await
}

/// POST /members/invitations/{id}/revoke.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, crate::auth::CsrfOnly>,
) -> Result<Response, WebError> {
    let Posted {
        session, client, ..
    } = posted;
    let member = Member::of(session)?;
    let id: uuid::Uuid = id.parse().map_err(|_| WebError::NotFound)?;
    member.require(Permission::UserManage)?;
    let audit = event(&member, "invitation.revoked", &client);
    state
        .store()
        .revoke_invitation(
            member.tenant_id,
            id,
            member.session.user(),
            state.now(),
            audit,
        )
        .await?;
    see_other("/members", &[])
}

/// What a refused membership change says.
fn refusal(change: &MembershipChange) -> Option<(StatusCode, &'static str)> {
    match change {
        MembershipChange::LastOwner => Some((
            StatusCode::CONFLICT,
            "The tenant's last owner stays an owner: make another member an owner first.",
        )),
        MembershipChange::OwnerOnly => Some((
            StatusCode::FORBIDDEN,
            "Only an owner may make or unmake an owner.",
        )),
        MembershipChange::Changed { .. } | MembershipChange::Unchanged => None,
    }
}

fn user_id(id: &str) -> Result<UserId, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

/// POST /members/{id}/role.
pub async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, RoleForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    let target = user_id(&id)?;
    member.require(Permission::UserManage)?;
    let role: Role = form.role.parse()?;
    let audit = event(&member, "member.role_changed", &client);
    let change = state
        .store()
        .change_member_role(
            member.tenant_id,
            target,
            role.as_str(),
            member.role == Role::Owner,
            audit,
        )
        .await?;
    if let Some((status, why)) = refusal(&change) {
        return members_page_with(&state, &member, status, refused(why)).await;
    }
    if matches!(change, MembershipChange::Changed { .. }) && target == member.session.user() {
        // The actor's own privileges changed: a new session id (the store
        // has ended their sessions in this tenant, this one too).
        let cookie = rotate_session(&state, &member.session, Some(member.tenant_id)).await?;
        return see_other("/members", &[cookie]);
    }
    see_other("/members", &[])
}

/// POST /members/{id}/remove.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, crate::auth::CsrfOnly>,
) -> Result<Response, WebError> {
    let Posted {
        session, client, ..
    } = posted;
    let member = Member::of(session)?;
    let target = user_id(&id)?;
    member.require(Permission::UserManage)?;
    let audit = event(&member, "member.removed", &client);
    let change = state
        .store()
        .remove_member(member.tenant_id, target, member.role == Role::Owner, audit)
        .await?;
    if let Some((status, why)) = refusal(&change) {
        return members_page_with(&state, &member, status, refused(why)).await;
    }
    if target == member.session.user() {
        // Left the tenant: go on in another of theirs, if any.
        let next = state
            .store()
            .memberships_of(target)
            .await?
            .first()
            .map(|m| m.tenant_id);
        let cookie = rotate_session(&state, &member.session, next).await?;
        return see_other("/dashboard", &[cookie]);
    }
    see_other("/members", &[])
}

// ---------------------------------------------------------------- accepting

/// What the invitation page shows.
#[derive(Debug, Serialize)]
struct InvitationPage {
    tenant: String,
    role: String,
    email: String,
    invited_by: String,
    expires: String,
}

impl From<&InvitationRecord> for InvitationPage {
    fn from(i: &InvitationRecord) -> Self {
        Self {
            tenant: i.tenant_display_name.clone(),
            role: i.role.clone(),
            email: i.email.clone(),
            invited_by: i
                .invited_by
                .clone()
                .unwrap_or_else(|| "a former member".into()),
            expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// The page of an invitation in one of its states: `new` (the account
/// form), `join` (a signed-in person joins), `sign_in` (an account with the
/// address exists: sign in first), `other_account` (signed in as someone
/// else) or `invalid`.
struct InvitationState<'a> {
    state: &'a str,
    invitation: Option<&'a InvitationRecord>,
    session: Option<&'a Signed>,
    csrf: &'a str,
    display_name: &'a str,
    message: &'a str,
}

async fn invitation_view(
    app: &AppState,
    status: StatusCode,
    view: InvitationState<'_>,
) -> Result<Response, WebError> {
    let frame = view.session.map(|s| frame(&s.0));
    let html = app.templates().render(
        "invitation.html",
        context! {
            user => frame.as_ref().map(|f| &f.user),
            tenant => frame.as_ref().and_then(|f| f.tenant.as_ref()),
            csrf => view.csrf,
            state => view.state,
            invitation => view.invitation.map(InvitationPage::from),
            display_name => view.display_name,
            message => view.message,
            min_password => MIN_PASSWORD_CHARS,
        },
    )?;
    Ok(page(status, html))
}

async fn invalid_invitation(
    app: &AppState,
    session: Option<&Signed>,
) -> Result<Response, WebError> {
    let csrf = session.map(|s| s.0.csrf.clone()).unwrap_or_default();
    invitation_view(
        app,
        StatusCode::NOT_FOUND,
        InvitationState {
            state: "invalid",
            invitation: None,
            session,
            csrf: &csrf,
            display_name: "",
            message: "",
        },
    )
    .await
}

/// The request's session, when signed in; a half-signed-in one owes its code first.
async fn signed_session(state: &AppState, headers: &HeaderMap) -> Result<Option<Signed>, WebError> {
    match find_session(headers, state).await? {
        Some(s) if s.pending() => Err(WebError::SecondFactorRequired),
        Some(s) => Ok(Some(Signed(s))),
        None => Ok(None),
    }
}

fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// GET /invitations/{token}.
pub async fn invitation_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let session = signed_session(&state, &headers).await?;
    let Some(invitation) = open_invitation(&state, &token).await? else {
        return invalid_invitation(&state, session.as_ref()).await;
    };
    if let Some(s) = &session {
        let (status, which) = if same_email(&s.0.record.email, &invitation.email) {
            (StatusCode::OK, "join")
        } else {
            (StatusCode::FORBIDDEN, "other_account")
        };
        return invitation_view(
            &state,
            status,
            InvitationState {
                state: which,
                invitation: Some(&invitation),
                session: Some(s),
                csrf: &s.0.csrf,
                display_name: "",
                message: "",
            },
        )
        .await;
    }
    if state
        .store()
        .user_credentials_by_email(&invitation.email)
        .await?
        .is_some()
    {
        return invitation_view(
            &state,
            StatusCode::OK,
            InvitationState {
                state: "sign_in",
                invitation: Some(&invitation),
                session: None,
                csrf: "",
                display_name: "",
                message: "",
            },
        )
        .await;
    }
    let csrf = new_token()?;
    let secure = state.config().secure_cookies;
    let mut r = invitation_view(
        &state,
        StatusCode::OK,
        InvitationState {
            state: "new",
            invitation: Some(&invitation),
            session: None,
            csrf: &csrf,
            display_name: "",
            message: "",
        },
    )
    .await?;
    r.headers_mut().append(
        SET_COOKIE,
        header_value(&build_cookie(
            invitation_cookie_name(secure),
            csrf,
            secure,
            Duration::hours(1),
        ))?,
    );
    Ok(r)
}

/// The open invitation of a token as it came in the link.
async fn open_invitation(
    state: &AppState,
    token: &str,
) -> Result<Option<InvitationRecord>, WebError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    Ok(state
        .store()
        .invitation_by_token(&token_sha256(token), state.now())
        .await?)
}

/// Why a new account's name or password is refused, if it is.
fn account_problem(form: &AcceptForm) -> Option<String> {
    let name = form.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Some("Enter your name (at most 100 characters).".into());
    }
    if form.password.chars().count() < MIN_PASSWORD_CHARS
        || form.password.len() > MAX_PASSWORD_BYTES
    {
        return Some(format!(
            "The password must have at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)."
        ));
    }
    if !tokens_match(&form.password, &form.password_confirm) {
        return Some("The two passwords differ.".into());
    }
    None
}

/// POST /invitations/{token}: a signed-in person joins; anyone else makes
/// an account. Either way a new session starts in the tenant.
pub async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<AcceptForm>,
) -> Result<Response, WebError> {
    let session = signed_session(&state, &headers).await?;
    let audit = |actor: Actor| {
        AuditEvent::new(None, actor, "invitation.accepted")
            .from_client(client.ip.clone(), client.user_agent.clone())
    };
    if let Some(s) = session {
        // An unknown link is "not found" whatever else the request holds.
        let Some(invitation) = open_invitation(&state, &token).await? else {
            return invalid_invitation(&state, Some(&s)).await;
        };
        s.0.check_csrf(&form.csrf)?;
        if !same_email(&s.0.record.email, &invitation.email) {
            return invitation_view(
                &state,
                StatusCode::FORBIDDEN,
                InvitationState {
                    state: "other_account",
                    invitation: Some(&invitation),
                    session: Some(&s),
                    csrf: &s.0.csrf,
                    display_name: "",
                    message: "",
                },
            )
            .await;
        }
        let accepted = match state
            .store()
            .accept_invitation(
                &token_sha256(&token),
                s.user(),
                state.now(),
                audit(Actor::User(s.user())),
            )
            .await
        {
            Ok(a) => a,
            Err(StoreError::NotFound) => return invalid_invitation(&state, Some(&s)).await,
            Err(e) => return Err(e.into()),
        };
        let cookie = rotate_session(&state, &s, Some(accepted.tenant)).await?;
        return see_other("/dashboard", &[cookie]);
    }

    let secure = state.config().secure_cookies;
    let Some(invitation) = open_invitation(&state, &token).await? else {
        return invalid_invitation(&state, None).await;
    };
    let expected = request_cookie(&headers, invitation_cookie_name(secure));
    if !expected.is_some_and(|e| tokens_match(&e, &form.csrf)) {
        return Err(WebError::Csrf);
    }
    if let Some(problem) = account_problem(&form) {
        return invitation_view(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            InvitationState {
                state: "new",
                invitation: Some(&invitation),
                session: None,
                csrf: &form.csrf,
                display_name: &form.display_name,
                message: &problem,
            },
        )
        .await;
    }
    let password = SecretString::new(form.password.clone());
    let hash = state.hasher().hash(&password).await?;
    let user = UserId::new();
    let accepted = match state
        .store()
        .accept_invitation_with_new_account(
            &token_sha256(&token),
            user,
            form.display_name.trim(),
            &hash,
            state.now(),
            audit(Actor::User(user)),
        )
        .await
    {
        Ok(a) => a,
        Err(StoreError::NotFound) => return invalid_invitation(&state, None).await,
        Err(StoreError::Conflict(_)) => {
            return invitation_view(
                &state,
                StatusCode::CONFLICT,
                InvitationState {
                    state: "sign_in",
                    invitation: Some(&invitation),
                    session: None,
                    csrf: "",
                    display_name: "",
                    message: "",
                },
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let started = start_session(&state, user, Some(accepted.tenant), false, SESSION_TTL).await?;
    state
        .store()
        .record_login_fingerprint(user, &client.fingerprint(), state.now())
        .await?;
    see_other(
        "/dashboard",
        &[
            started.set_cookie,
            removal_cookie(invitation_cookie_name(secure), secure),
        ],
    )
}
