//! Signing in and out, the second factor, and enrolling and disabling
//! TOTP. Every sign-in starts a new session; so does every change of what a
//! session may do (second factor given, 2FA turned on or off). Failures are
//! throttled per account and per address, and every outcome is audited with
//! IP and user agent, never a password, code or secret. Reads and writes the
//! store.

use axum::Form;
use axum::extract::State;
use axum::http::header::{LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use minijinja::context;
use serde::Deserialize;
use zentralink_model::secrets::SecretString;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::{Store, StoreError, TenantId, UserId};

use crate::AppState;
use crate::error::{Rendered, WebError};
use crate::pages::frame;
use crate::password::{MAX_PASSWORD_BYTES, PasswordHasher};
use crate::session::{
    AnySession, Client, CsrfForm, PENDING_TTL, Pending, Posted, SESSION_TTL, Signed, build_cookie,
    cookie_name, find_session, login_cookie_name, new_token, removal_cookie, request_cookie,
    start_session, tokens_match,
};
use crate::throttle::{account_subject, ip_subject, retry_after, retry_after_seconds};
use crate::totp;

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub csrf: String,
}

/// A form with only the CSRF token (sign out, start enrolment).
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form with a code (TOTP or backup code).
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Turning 2FA off: the password and a code.
#[derive(Debug, Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for DisableForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn header_value(v: &str) -> Result<HeaderValue, WebError> {
    HeaderValue::from_str(v).map_err(|e| WebError::Internal(format!("bad header value: {e}")))
}

/// A 303 to `to` that sets the cookies.
fn redirect_with(to: &'static str, cookies: &[String]) -> Result<Response, WebError> {
    let mut r = (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response();
    for c in cookies {
        r.headers_mut().append(SET_COOKIE, header_value(c)?);
    }
    Ok(r)
}

/// A page with its own error status (kept as it is by the error-page layer).
fn page_with_status(
    status: StatusCode,
    html: String,
    retry: Option<Duration>,
) -> Result<Response, WebError> {
    let mut r = (status, Html(html)).into_response();
    if let Some(wait) = retry {
        r.headers_mut().insert(
            RETRY_AFTER,
            header_value(&retry_after_seconds(wait).to_string())?,
        );
    }
    r.extensions_mut().insert(Rendered);
    Ok(r)
}

async fn audit(
    store: &Store,
    tenant: Option<TenantId>,
    actor: Actor,
    action: &str,
    client: &Client,
    target: Option<UserId>,
    reason: Option<&str>,
) -> Result<(), WebError> {
    let mut event = AuditEvent::new(tenant, actor, action)
        .from_client(client.ip.clone(), client.user_agent.clone());
    if let Some(user) = target {
        event = event.target("user", user);
    }
    if let Some(reason) = reason {
        event = event.meta("reason", reason);
    }
    store.audit(event).await?;
    Ok(())
}

/// How long the account or the address must wait, if either must.
async fn throttled(
    state: &AppState,
    account: &[u8; 32],
    client: &Client,
    now: DateTime<Utc>,
) -> Result<Option<Duration>, WebError> {
    let policy = state.config().throttle;
    let since = now - policy.window;
    let store = state.store();
    let mut wait = retry_after(
        &store.login_failures_since(account, since).await?,
        policy.per_account,
        policy.window,
        now,
    );
    if let Some(ip) = &client.ip {
        let by_ip = retry_after(
            &store.login_failures_since(&ip_subject(ip), since).await?,
            policy.per_ip,
            policy.window,
            now,
        );
        wait = wait.max(by_ip);
    }
    Ok(wait)
}

async fn record_failure(
    state: &AppState,
    account: &[u8; 32],
    client: &Client,
    now: DateTime<Utc>,
) -> Result<(), WebError> {
    state.store().record_login_failure(account, now).await?;
    if let Some(ip) = &client.ip {
        state
            .store()
            .record_login_failure(&ip_subject(ip), now)
            .await?;
    }
    Ok(())
}

/// A sign-in attempt recorded against its account before the password is
/// checked.
struct Attempt {
    id: i64,
}

impl Attempt {
    /// Forgets the attempt: it succeeded.
    async fn forget(self, state: &AppState) -> Result<(), WebError> {
        Ok(state.store().forget_login_attempt(self.id).await?)
    }
}

/// Says how long the account or the address must wait, if either must;
/// otherwise records the attempt against the account and returns it. For
/// the account, every attempt recorded before this one counts, failed or
/// still being checked, so simultaneous guesses at one account cannot
/// overtake its limit; an allowed attempt stays recorded until it succeeds
/// (then it is forgotten) or fails (then it is the failure). For the
/// address, failures count (recorded when they happen): counting sign-ins
/// in flight there would throttle everyone behind one proxy who signs in at
/// the same moment.
async fn attempt(
    state: &AppState,
    account: &[u8; 32],
    client: &Client,
    now: DateTime<Utc>,
) -> Result<Result<Attempt, Duration>, WebError> {
    if let Some(wait) = throttled(state, account, client, now).await? {
        return Ok(Err(wait));
    }
    let policy = state.config().throttle;
    let store = state.store();
    let (id, earlier) = store
        .record_login_attempt(account, now, now - policy.window)
        .await?;
    if let Some(wait) = retry_after(&earlier, policy.per_account, policy.window, now) {
        store.forget_login_attempt(id).await?;
        return Ok(Err(wait));
    }
    Ok(Ok(Attempt { id }))
}

fn throttle_message(wait: Duration) -> String {
    let minutes = (retry_after_seconds(wait) + 59) / 60;
    format!(
        "Too many failed sign-ins for this account or from this address. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    csrf: &str,
    email: &str,
    message: &str,
    retry: Option<Duration>,
) -> Result<Response, WebError> {
    let html = state.templates().render(
        "login.html",
        context! { csrf => csrf, email => email, message => message },
    )?;
    page_with_status(status, html, retry)
}

/// GET /login: the form, with a fresh CSRF token in a cookie and a field.
pub async fn login_page(State(state): State<AppState>) -> Result<Response, WebError> {
    let token = new_token()?;
    let secure = state.config().secure_cookies;
    let html = state.templates().render(
        "login.html",
        context! { csrf => &token, email => "", message => "" },
    )?;
    let mut r = Html(html).into_response();
    r.headers_mut().append(
        SET_COOKIE,
        header_value(&build_cookie(
            login_cookie_name(secure),
            token,
            secure,
            Duration::hours(1),
        ))?,
    );
    Ok(r)
}

/// The tenant a fresh session starts in: the user's first by slug.
async fn first_tenant(store: &Store, user: UserId) -> Result<Option<TenantId>, WebError> {
    Ok(store
        .memberships_of(user)
        .await?
        .first()
        .map(|m| m.tenant_id))
}

/// Ends the session this browser had, if any (a sign-in always starts a new one).
async fn end_current_session(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    if let Some(old) = find_session(headers, state).await? {
        state
            .store()
            .delete_session(old.user(), old.record.id)
            .await?;
    }
    Ok(())
}

/// A completed sign-in: fingerprint and audit event.
async fn signed_in(
    state: &AppState,
    user: UserId,
    tenant: Option<TenantId>,
    client: &Client,
    method: &str,
) -> Result<(), WebError> {
    let new_place = state
        .store()
        .record_login_fingerprint(user, &client.fingerprint(), state.now())
        .await?;
    let event = AuditEvent::new(tenant, Actor::User(user), "login")
        .from_client(client.ip.clone(), client.user_agent.clone())
        .target("user", user)
        .meta("second_factor", method)
        .meta("new_fingerprint", new_place);
    state.store().audit(event).await?;
    Ok(())
}

/// POST /login.
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let secure = state.config().secure_cookies;
    let expected = request_cookie(&headers, login_cookie_name(secure));
    if !expected.is_some_and(|e| tokens_match(&e, &form.csrf)) {
        return Err(WebError::Csrf);
    }
    let email = form.email.trim().to_lowercase();
    let password = SecretString::new(form.password);
    let now = state.now();
    let account = account_subject(&email);
    let store = state.store();

    let attempt = match attempt(&state, &account, &client, now).await? {
        Ok(attempt) => attempt,
        Err(wait) => {
            audit(
                store,
                None,
                Actor::Anonymous,
                "login.throttled",
                &client,
                None,
                None,
            )
            .await?;
            return login_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &form.csrf,
                &email,
                &throttle_message(wait),
                Some(wait),
            );
        }
    };

    let credentials = if email.len() <= 254 {
        store.user_credentials_by_email(&email).await?
    } else {
        None
    };
    let password_ok = password.expose().len() <= MAX_PASSWORD_BYTES
        && state
            .hasher()
            .verify(
                &password,
                credentials.as_ref().map(|c| c.password_hash.as_str()),
            )
            .await?;
    let user = match credentials {
        Some(c) if password_ok && !c.disabled => c.id,
        other => {
            // The attempt recorded against the account stays: it is the
            // failure; the address's is recorded now.
            if let Some(ip) = &client.ip {
                store.record_login_failure(&ip_subject(ip), now).await?;
            }
            let reason = match &other {
                Some(c) if c.disabled => "account disabled",
                Some(_) => "wrong password",
                None => "unknown account",
            };
            audit(
                store,
                None,
                Actor::Anonymous,
                "login.failed",
                &client,
                other.as_ref().map(|c| c.id),
                Some(reason),
            )
            .await?;
            return login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                &form.csrf,
                &email,
                "Wrong e-mail or password.",
                None,
            );
        }
    };
    attempt.forget(&state).await?;
    store.clear_login_failures(&account).await?;
    end_current_session(&state, &headers).await?;
    let tenant = first_tenant(store, user).await?;
    let enrolled = store.totp_status(user).await?.is_some_and(|t| t.confirmed);
    let login_cookie_gone = removal_cookie(login_cookie_name(secure), secure);
    if enrolled {
        let started = start_session(&state, user, tenant, false, PENDING_TTL).await?;
        audit(
            store,
            None,
            Actor::User(user),
            "login.second_factor_required",
            &client,
            Some(user),
            None,
        )
        .await?;
        return redirect_with("/login/2fa", &[started.set_cookie, login_cookie_gone]);
    }
    let started = start_session(&state, user, tenant, false, SESSION_TTL).await?;
    signed_in(&state, user, tenant, &client, "none").await?;
    redirect_with("/dashboard", &[started.set_cookie, login_cookie_gone])
}

/// Which second factor a code is, when it is right and not used before:
/// a TOTP code of a step later than any used, or an unused backup code
/// (then marked used).
async fn check_second_factor(
    state: &AppState,
    user: UserId,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<&'static str>, WebError> {
    let store = state.store();
    if code.len() > 64 {
        return Ok(None);
    }
    if totp::looks_like_totp(code) {
        let secret = match store.totp_secret(user).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        return Ok(match totp::matching_step(&secret, code, now)? {
            Some(step) if store.use_totp_step(user, step).await? => Some("totp"),
            _ => None,
        });
    }
    let given = totp::normalize_backup_code(code);
    if given.expose().is_empty() {
        return Ok(None);
    }
    for (id, hash) in store.unused_backup_codes(user).await? {
        if state.hasher().verify(&given, Some(&hash)).await? {
            return Ok(store
                .use_backup_code(user, id, now)
                .await?
                .then_some("backup_code"));
        }
    }
    Ok(None)
}

fn second_factor_form(
    state: &AppState,
    status: StatusCode,
    csrf: &str,
    message: &str,
    retry: Option<Duration>,
) -> Result<Response, WebError> {
    let html = state.templates().render(
        "second_factor.html",
        context! { csrf => csrf, message => message },
    )?;
    page_with_status(status, html, retry)
}

/// GET /login/2fa.
pub async fn second_factor_page(
    State(state): State<AppState>,
    Pending(session): Pending,
) -> Result<Response, WebError> {
    second_factor_form(&state, StatusCode::OK, &session.csrf, "", None)
}

/// POST /login/2fa: the code completes the sign-in with a new session.
pub async fn second_factor(
    State(state): State<AppState>,
    posted: Posted<Pending, CodeForm>,
) -> Result<Response, WebError> {
    let Posted {
        session: Pending(session),
        form,
        client,
    } = posted;
    let user = session.user();
    let now = state.now();
    let account = account_subject(&session.record.email);
    let store = state.store();
    if let Some(wait) = throttled(&state, &account, &client, now).await? {
        audit(
            store,
            None,
            Actor::Anonymous,
            "login.throttled",
            &client,
            Some(user),
            None,
        )
        .await?;
        return second_factor_form(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &session.csrf,
            &throttle_message(wait),
            Some(wait),
        );
    }
    let Some(method) = check_second_factor(&state, user, &form.code, now).await? else {
        record_failure(&state, &account, &client, now).await?;
        audit(
            store,
            None,
            Actor::Anonymous,
            "login.failed",
            &client,
            Some(user),
            Some("wrong or reused second-factor code"),
        )
        .await?;
        return second_factor_form(
            &state,
            StatusCode::UNAUTHORIZED,
            &session.csrf,
            "That code is wrong or has been used already.",
            None,
        );
    };
    store.clear_login_failures(&account).await?;
    store.delete_session(user, session.record.id).await?;
    let tenant = session.record.tenant_id;
    let started = start_session(&state, user, tenant, true, SESSION_TTL).await?;
    if method == "backup_code" {
        audit(
            store,
            tenant,
            Actor::User(user),
            "2fa.backup_code_used",
            &client,
            Some(user),
            None,
        )
        .await?;
    }
    signed_in(&state, user, tenant, &client, method).await?;
    redirect_with("/dashboard", &[started.set_cookie])
}

/// POST /logout: ends this session.
pub async fn logout(
    State(state): State<AppState>,
    posted: Posted<Signed, CsrfOnly>,
) -> Result<Response, WebError> {
    let s = &posted.session.0;
    state.store().delete_session(s.user(), s.record.id).await?;
    audit(
        state.store(),
        s.record.tenant_id,
        Actor::User(s.user()),
        "logout",
        &posted.client,
        Some(s.user()),
        None,
    )
    .await?;
    let secure = state.config().secure_cookies;
    redirect_with("/login", &[removal_cookie(cookie_name(secure), secure)])
}

/// POST /logout/everywhere: ends every session of the user.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    posted: Posted<Signed, CsrfOnly>,
) -> Result<Response, WebError> {
    let s = &posted.session.0;
    let ended = state.store().delete_user_sessions(s.user()).await?;
    let event = AuditEvent::new(
        s.record.tenant_id,
        Actor::User(s.user()),
        "logout.everywhere",
    )
    .from_client(posted.client.ip.clone(), posted.client.user_agent.clone())
    .target("user", s.user())
    .meta("sessions_ended", i64::try_from(ended).unwrap_or(i64::MAX));
    state.store().audit(event).await?;
    let secure = state.config().secure_cookies;
    redirect_with("/login", &[removal_cookie(cookie_name(secure), secure)])
}

/// What the 2FA page shows besides the frame.
#[derive(Debug, Default)]
struct TotpView {
    enrolled: bool,
    enrolment: Option<(String, String)>,
    message: String,
}

async fn totp_view(
    state: &AppState,
    session: &AnySession,
    csrf: &str,
    status: StatusCode,
    view: TotpView,
) -> Result<Response, WebError> {
    let mut frame = frame(session);
    csrf.clone_into(&mut frame.csrf);
    let enrolment = view
        .enrolment
        .map(|(url, qr)| context! { url => url, qr => qr });
    let html = state.templates().render(
        "totp.html",
        context! {
            user => frame.user, tenant => frame.tenant, csrf => frame.csrf,
            enrolled => view.enrolled, enrolment => enrolment, message => view.message,
        },
    )?;
    page_with_status(status, html, None)
}

/// GET /account/2fa.
pub async fn totp_page(
    State(state): State<AppState>,
    Signed(session): Signed,
) -> Result<Response, WebError> {
    let enrolled = state
        .store()
        .totp_status(session.user())
        .await?
        .is_some_and(|t| t.confirmed);
    let csrf = session.csrf.clone();
    totp_view(
        &state,
        &session,
        &csrf,
        StatusCode::OK,
        TotpView {
            enrolled,
            ..Default::default()
        },
    )
    .await
}

/// POST /account/2fa/enrol: a new secret, shown as a QR code and an otpauth URL.
pub async fn totp_enrol(
    State(state): State<AppState>,
    posted: Posted<Signed, CsrfOnly>,
) -> Result<Response, WebError> {
    let session = posted.session.0;
    let secret = totp::new_secret()?;
    if !state
        .store()
        .start_totp_enrolment(session.user(), &secret)
        .await?
    {
        // Already on: turning it off first needs the password and a code.
        return redirect_with("/account/2fa", &[]);
    }
    audit(
        state.store(),
        session.record.tenant_id,
        Actor::User(session.user()),
        "2fa.enrolment_started",
        &posted.client,
        Some(session.user()),
        None,
    )
    .await?;
    show_enrolment(&state, &session, &secret, StatusCode::OK, String::new()).await
}

async fn show_enrolment(
    state: &AppState,
    session: &AnySession,
    secret: &SecretString,
    status: StatusCode,
    message: String,
) -> Result<Response, WebError> {
    let e = totp::enrolment(secret, &session.record.email, &state.config().totp_issuer)?;
    let csrf = session.csrf.clone();
    totp_view(
        state,
        session,
        &csrf,
        status,
        TotpView {
            enrolled: false,
            enrolment: Some((e.otpauth_url, e.qr_png_base64)),
            message,
        },
    )
    .await
}

/// Ten new backup codes, stored as argon2id hashes; returned to show once.
async fn new_backup_codes(
    store: &Store,
    hasher: &PasswordHasher,
    user: UserId,
) -> Result<Vec<String>, WebError> {
    let codes = totp::new_backup_codes()?;
    let mut hashes = Vec::with_capacity(codes.len());
    for code in &codes {
        hashes.push(
            hasher
                .hash(&totp::normalize_backup_code(code.expose()))
                .await?,
        );
    }
    store.replace_backup_codes(user, &hashes).await?;
    Ok(codes.iter().map(|c| c.expose().to_owned()).collect())
}

/// POST /account/2fa/confirm: the first code turns 2FA on, makes the
/// backup codes and starts a new session that has given the second factor.
pub async fn totp_confirm(
    State(state): State<AppState>,
    posted: Posted<Signed, CodeForm>,
) -> Result<Response, WebError> {
    let Posted {
        session: Signed(session),
        form,
        client,
    } = posted;
    let user = session.user();
    let store = state.store();
    let now = state.now();
    match store.totp_status(user).await? {
        Some(s) if !s.confirmed => {}
        _ => return redirect_with("/account/2fa", &[]),
    }
    let secret = store.totp_secret(user).await?;
    let confirmed = match totp::matching_step(&secret, &form.code, now)? {
        Some(step) => store.confirm_totp(user, step, now).await?,
        None => false,
    };
    if !confirmed {
        audit(
            store,
            session.record.tenant_id,
            Actor::User(user),
            "2fa.confirm_refused",
            &client,
            Some(user),
            Some("wrong or reused code"),
        )
        .await?;
        return show_enrolment(
            &state,
            &session,
            &secret,
            StatusCode::UNPROCESSABLE_ENTITY,
            "That code is not right. Check the time on your device and enter the code the app shows now.".into(),
        )
        .await;
    }
    let codes = new_backup_codes(store, state.hasher(), user).await?;
    store.delete_session(user, session.record.id).await?;
    let started = start_session(&state, user, session.record.tenant_id, true, SESSION_TTL).await?;
    audit(
        store,
        session.record.tenant_id,
        Actor::User(user),
        "2fa.enrolled",
        &client,
        Some(user),
        None,
    )
    .await?;
    let frame = frame(&session);
    let html = state.templates().render(
        "backup_codes.html",
        context! { user => frame.user, tenant => frame.tenant, csrf => started.csrf, codes => codes },
    )?;
    let mut r = Html(html).into_response();
    r.headers_mut()
        .append(SET_COOKIE, header_value(&started.set_cookie)?);
    Ok(r)
}

/// POST /account/2fa/disable: needs the password and a code; wipes the
/// secret and the backup codes and starts a new session.
pub async fn totp_disable(
    State(state): State<AppState>,
    posted: Posted<Signed, DisableForm>,
) -> Result<Response, WebError> {
    let Posted {
        session: Signed(session),
        form,
        client,
    } = posted;
    let user = session.user();
    let store = state.store();
    let now = state.now();
    let account = account_subject(&session.record.email);
    let refuse = |message: String| TotpView {
        enrolled: true,
        enrolment: None,
        message,
    };
    if let Some(wait) = throttled(&state, &account, &client, now).await? {
        audit(
            store,
            session.record.tenant_id,
            Actor::User(user),
            "2fa.disable_throttled",
            &client,
            Some(user),
            None,
        )
        .await?;
        let csrf = session.csrf.clone();
        let mut r = totp_view(
            &state,
            &session,
            &csrf,
            StatusCode::TOO_MANY_REQUESTS,
            refuse(throttle_message(wait)),
        )
        .await?;
        r.headers_mut().insert(
            RETRY_AFTER,
            header_value(&retry_after_seconds(wait).to_string())?,
        );
        return Ok(r);
    }
    let password = SecretString::new(form.password);
    let hash = store.password_hash(user).await?;
    let password_ok = password.expose().len() <= MAX_PASSWORD_BYTES
        && state.hasher().verify(&password, Some(&hash)).await?;
    let method = if password_ok {
        check_second_factor(&state, user, &form.code, now).await?
    } else {
        None
    };
    let Some(method) = method else {
        record_failure(&state, &account, &client, now).await?;
        audit(
            store,
            session.record.tenant_id,
            Actor::User(user),
            "2fa.disable_refused",
            &client,
            Some(user),
            Some("wrong password or code"),
        )
        .await?;
        let csrf = session.csrf.clone();
        return totp_view(
            &state,
            &session,
            &csrf,
            StatusCode::UNAUTHORIZED,
            refuse("The password or the code is wrong; two-factor sign-in stays on.".into()),
        )
        .await;
    };
    if method == "backup_code" {
        audit(
            store,
            session.record.tenant_id,
            Actor::User(user),
            "2fa.backup_code_used",
            &client,
            Some(user),
            None,
        )
        .await?;
    }
    store.disable_second_factor(user).await?;
    store.delete_session(user, session.record.id).await?;
    let started = start_session(&state, user, session.record.tenant_id, false, SESSION_TTL).await?;
    let event = AuditEvent::new(session.record.tenant_id, Actor::User(user), "2fa.disabled")
        .from_client(client.ip.clone(), client.user_agent.clone())
        .target("user", user)
        .meta("second_factor", method);
    store.audit(event).await?;
    redirect_with("/account/2fa", &[started.set_cookie])
}

/// Creates the first owner of a tenant (the tenant too, when it does not
/// exist yet) with an argon2id hash of the password. For
/// `zentralink web create-owner`.
/// Makes a user one of the platform's staff, or no longer (from the CLI);
/// an audit event either way.
pub async fn make_staff(store: &Store, email: &str, staff: bool) -> Result<UserId, WebError> {
    let user = match store.set_platform_admin(email, staff).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => {
            return Err(WebError::BadRequest(format!(
                "no user has the address {email:?}"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let action = if staff {
        "user.staff_granted"
    } else {
        "user.staff_revoked"
    };
    store
        .audit(
            AuditEvent::new(None, Actor::Operator("zentralink-cli".into()), action)
                .target("user", user),
        )
        .await?;
    Ok(user)
}

pub async fn create_owner(
    store: &Store,
    email: &str,
    tenant_slug: &str,
    password: &SecretString,
) -> Result<UserId, WebError> {
    let email = email.trim().to_lowercase();
    if email.len() > 254 || !email.contains('@') {
        return Err(WebError::BadRequest(format!(
            "{email:?} is not an e-mail address"
        )));
    }
    if password.expose().chars().count() < 12 || password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(WebError::BadRequest(
            "the password must have at least 12 characters (and at most 1024 bytes)".into(),
        ));
    }
    let tenant = match store.tenant_by_slug(tenant_slug).await {
        Ok(t) => t.id,
        Err(StoreError::NotFound) => store.upsert_tenant(tenant_slug, tenant_slug).await?,
        Err(e) => return Err(e.into()),
    };
    let hash = PasswordHasher::new(1)?.hash(password).await?;
    let user = store.create_owner(tenant, &email, &email, &hash).await?;
    store
        .audit(
            AuditEvent::new(
                Some(tenant),
                Actor::Operator("zentralink-cli".into()),
                "user.owner_created",
            )
            .target("user", user),
        )
        .await?;
    Ok(user)
}
