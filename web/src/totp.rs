//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, one step
//! of skew either way) and backup codes. Which step a code matched is
//! returned so the caller can refuse a step used before; the time is a
//! parameter. Pure, apart from drawing random secrets and codes.

use chrono::{DateTime, Utc};
use data_encoding::BASE32_NOPAD;
use totp_rs::{Builder, Secret, Totp};
use zentralink_model::secrets::SecretString;

use crate::error::WebError;

/// Secret length in bytes (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// How many backup codes a user gets.
pub const BACKUP_CODES: usize = 10;

/// A fresh random secret, base32 (the form authenticator apps take and the store keeps).
pub fn new_secret() -> Result<SecretString, WebError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Random(e.to_string()))?;
    Ok(SecretString::new(BASE32_NOPAD.encode(&bytes)))
}

fn totp(secret: &SecretString, account: &str, issuer: &str) -> Result<Totp, WebError> {
    let bytes = BASE32_NOPAD
        .decode(secret.expose().as_bytes())
        .map_err(|_| WebError::Totp("the stored secret is not base32".into()))?;
    Builder::new()
        .with_secret(Secret::from(bytes))
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(issuer.replace(':', "_")))
        .build()
        .map_err(|e| WebError::Totp(e.to_string()))
}

/// What the enrolment page shows: the `otpauth://` URL and a QR code of it
/// (a PNG, base64).
#[derive(Debug)]
pub struct Enrolment {
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

pub fn enrolment(
    secret: &SecretString,
    account: &str,
    issuer: &str,
) -> Result<Enrolment, WebError> {
    let t = totp(secret, account, issuer)?;
    Ok(Enrolment {
        otpauth_url: t.to_url().map_err(|e| WebError::Totp(e.to_string()))?,
        qr_png_base64: t
            .to_qr_base64()
            .map_err(|e| WebError::Totp(e.to_string()))?,
    })
}

/// The time step of `now`.
pub fn step_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(30)
}

/// The step (within one of `now`'s) whose code `code` is, compared in
/// constant time; `None` when it is none of them. Spaces in the code are ignored.
pub fn matching_step(
    secret: &SecretString,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, WebError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(time) = u64::try_from(now.timestamp()) else {
        return Ok(None);
    };
    let t = totp(secret, "check", "check")?;
    Ok(t.check(&code, time).and_then(|s| i64::try_from(s).ok()))
}

/// The code of a step (for tests and for showing what an app would show).
pub fn code_at(secret: &SecretString, step: i64) -> Result<String, WebError> {
    let time = u64::try_from(step.max(0)).unwrap_or(0) * 30;
    Ok(totp(secret, "check", "check")?.generate(time).to_string())
}

/// Whether an input looks like a TOTP code (six digits) rather than a backup code.
pub fn looks_like_totp(code: &str) -> bool {
    let digits: Vec<char> = code.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.iter().all(char::is_ascii_digit)
}

/// Ten fresh backup codes, `xxxx-xxxx` (40 random bits each, base32).
pub fn new_backup_codes() -> Result<Vec<SecretString>, WebError> {
    (0..BACKUP_CODES)
        .map(|_| {
            let mut bytes = [0u8; 5];
            getrandom::fill(&mut bytes).map_err(|e| WebError::Random(e.to_string()))?;
            let text = BASE32_NOPAD.encode(&bytes).to_lowercase();
            Ok(SecretString::new(format!("{}-{}", &text[..4], &text[4..])))
        })
        .collect()
}

/// A backup code as it is hashed: without dashes and spaces, lower case.
pub fn normalize_backup_code(code: &str) -> SecretString {
    SecretString::new(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn rfc6238_test_vector() {
        // RFC 6238 appendix B, SHA1, T = 59: 94287082 (8 digits); 6 digits: 287082.
        let secret = SecretString::new(BASE32_NOPAD.encode(b"12345678901234567890"));
        assert_eq!(code_at(&secret, 1).unwrap(), "287082");
        assert_eq!(matching_step(&secret, "287082", at(59)).unwrap(), Some(1));
    }

    #[test]
    fn one_step_of_skew_and_no_more() {
        let secret = new_secret().unwrap();
        let now = at(1_800_000_000);
        let step = step_of(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(&secret, step + offset).unwrap();
            let got = matching_step(&secret, &code, now).unwrap();
            assert_eq!(got.is_some(), accepted, "offset {offset}");
            if accepted {
                assert_eq!(got, Some(step + offset));
            }
        }
        assert_eq!(matching_step(&secret, "12345", now).unwrap(), None);
        assert_eq!(matching_step(&secret, "+12345", now).unwrap(), None);
    }

    #[test]
    fn backup_codes_are_ten_distinct_and_normalize() {
        let codes = new_backup_codes().unwrap();
        assert_eq!(codes.len(), 10);
        let set: std::collections::BTreeSet<_> =
            codes.iter().map(|c| c.expose().to_owned()).collect();
        assert_eq!(set.len(), 10);
        let c = codes[0].expose();
        assert_eq!(
            normalize_backup_code(&c.to_uppercase()).expose(),
            c.replace('-', "")
        );
        assert!(!looks_like_totp(c));
        assert!(looks_like_totp("123 456"));
    }
}
