//! Sending the mail queue: each due message is claimed with its row locked
//! (`FOR UPDATE SKIP LOCKED`, so concurrent flushes never send one twice),
//! sent through `lettre`'s async SMTP transport with the tenant's settings
//! (else the platform's), and its row updated with the outcome: SENT, or the
//! server's answer and a retry with exponential backoff, or FAILED after
//! [`MAX_ATTEMPTS`] attempts or a permanent (5xx) answer. Without SMTP
//! settings nothing is attempted and the row says so. Does I/O (SMTP, the
//! store).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use uuid::Uuid;
use zentralink_store::TenantId;
use zentralink_store::settings::{MailClaim, MailRecord, SmtpSettings};

use super::NO_SMTP;
use crate::AppState;
use crate::error::WebError;

/// Attempts before a message that keeps failing transiently is FAILED.
pub const MAX_ATTEMPTS: i32 = 5;
/// The wait after the first failed attempt; it doubles with each attempt.
pub const FIRST_RETRY: chrono::Duration = chrono::Duration::minutes(1);
/// The longest wait between attempts.
pub const LONGEST_RETRY: chrono::Duration = chrono::Duration::hours(1);
/// Messages one flush sends at most (the next flush continues).
const FLUSH_LIMIT: usize = 200;
/// How long one conversation with the SMTP server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to wait after `attempts` failed attempts: 1, 2, 4, 8 ... minutes,
/// at most an hour.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    let wait = FIRST_RETRY * 2_i32.pow(doublings);
    wait.min(LONGEST_RETRY)
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// What the server (or the connection) said.
    pub message: String,
    /// A 5xx answer or a message that can never be sent: no retry.
    pub permanent: bool,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry(SendFailure, DateTime<Utc>),
    Failed(SendFailure),
    NotConfigured,
}

/// `text` with the password (if any) cut out: a server's answer could echo it.
fn redact(text: &str, settings: &SmtpSettings) -> String {
    match &settings.password {
        Some(p) if !p.expose().is_empty() => text.replace(p.expose(), "[redacted]"),
        _ => text.to_owned(),
    }
}

/// The transport for a set of settings.
pub fn transport(
    settings: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendFailure> {
    let host = settings.host.trim();
    let builder = match settings.tls.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        "starttls" => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| SendFailure {
                message: format!("STARTTLS to {host}: {e}"),
                permanent: false,
            })?
        }
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| SendFailure {
            message: format!("TLS to {host}: {e}"),
            permanent: false,
        })?,
        other => {
            return Err(SendFailure {
                message: format!("the TLS setting {other:?} is none, starttls or tls"),
                permanent: false,
            });
        }
    };
    let mut builder = builder.port(settings.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = settings.username.as_deref().filter(|u| !u.is_empty()) {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.to_owned(), password));
    }
    Ok(builder.build())
}

fn mailbox(text: &str, what: &str) -> Result<Mailbox, SendFailure> {
    text.trim().parse::<Mailbox>().map_err(|e| SendFailure {
        message: format!("the {what} address {text:?} is not valid: {e}"),
        permanent: true,
    })
}

/// Sends one message with `settings`.
pub async fn deliver(
    settings: &SmtpSettings,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), SendFailure> {
    let message = Message::builder()
        .from(mailbox(&settings.from_address, "sender")?)
        .to(mailbox(to, "recipient")?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|e| SendFailure {
            message: format!("the message could not be built: {e}"),
            permanent: true,
        })?;
    let transport = transport(settings)?;
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(SendFailure {
            message: redact(&describe(&e), settings),
            permanent: e.is_permanent(),
        }),
    }
}

/// The error with its sources (the server's answer, the I/O error).
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Settings in force per tenant (`None`: the platform's own messages), read once per flush.
type SettingsCache = HashMap<Option<TenantId>, Option<SmtpSettings>>;

async fn settings_for(
    state: &AppState,
    cache: &mut SettingsCache,
    tenant: Option<TenantId>,
) -> Result<Option<SmtpSettings>, WebError> {
    if let Some(s) = cache.get(&tenant) {
        return Ok(s.clone());
    }
    let s = state.store().smtp_settings(tenant).await?;
    cache.insert(tenant, s.clone());
    Ok(s)
}

/// Attempts a claimed message and records the outcome on its row.
async fn process(
    state: &AppState,
    claim: MailClaim,
    cache: &mut SettingsCache,
    now: DateTime<Utc>,
) -> Result<Outcome, WebError> {
    let Some(settings) = settings_for(state, cache, claim.tenant_id).await? else {
        claim.not_attempted(NO_SMTP).await?;
        return Ok(Outcome::NotConfigured);
    };
    let result = deliver(&settings, &claim.to_address, &claim.subject, &claim.body).await;
    let attempts = claim.attempts.saturating_add(1);
    let outcome = match result {
        Ok(()) => {
            claim.sent(now).await?;
            Outcome::Sent
        }
        Err(failure) if failure.permanent || attempts >= MAX_ATTEMPTS => {
            let text = if failure.permanent {
                failure.message.clone()
            } else {
                format!("{} (gave up after {attempts} attempts)", failure.message)
            };
            claim.failed(&text, None).await?;
            Outcome::Failed(failure)
        }
        Err(failure) => {
            let at = now + backoff(attempts);
            claim.failed(&failure.message, Some(at)).await?;
            Outcome::Retry(failure, at)
        }
    };
    Ok(outcome)
}

/// What a flush did.
#[derive(Debug, Default, Serialize)]
struct FlushCounts {
    sent: usize,
    failed: usize,
    retrying: usize,
    not_configured: usize,
}

/// Cron job `mail-flush`: sends what is queued and due.
pub async fn flush_queue(state: &AppState) -> Result<serde_json::Value, WebError> {
    let now = state.now();
    let mut counts = FlushCounts::default();
    let mut skip: Vec<Uuid> = Vec::new();
    let mut cache = SettingsCache::new();
    for _ in 0..FLUSH_LIMIT {
        let Some(claim) = state.store().claim_due_mail(now, &skip, None).await? else {
            break;
        };
        let id = claim.id;
        match process(state, claim, &mut cache, now).await? {
            Outcome::Sent => counts.sent += 1,
            Outcome::Failed(_) => counts.failed += 1,
            Outcome::Retry(..) => counts.retrying += 1,
            Outcome::NotConfigured => {
                counts.not_configured += 1;
                skip.push(id);
            }
        }
    }
    serde_json::to_value(&counts).map_err(|e| WebError::Internal(e.to_string()))
}

/// Sends one queued message now (the "send a test e-mail" button) and
/// returns its row as it is afterwards.
pub async fn send_now(state: &AppState, id: Uuid) -> Result<MailRecord, WebError> {
    let now = state.now();
    if let Some(claim) = state.store().claim_due_mail(now, &[], Some(id)).await? {
        process(state, claim, &mut SettingsCache::new(), now).await?;
    }
    Ok(state.store().mail_message(None, id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), chrono::Duration::minutes(1));
        assert_eq!(backoff(2), chrono::Duration::minutes(2));
        assert_eq!(backoff(4), chrono::Duration::minutes(8));
        assert_eq!(backoff(30), chrono::Duration::hours(1));
    }

    #[test]
    fn a_password_in_an_answer_is_cut_out() {
        let s = SmtpSettings {
            host: "h".into(),
            port: 25,
            username: Some("u".into()),
            password: Some(zentralink_model::secrets::SecretString::new("hunter2")),
            from_address: "a@b.example".into(),
            tls: "none".into(),
        };
        assert_eq!(redact("535 bad hunter2", &s), "535 bad [redacted]");
    }
}
