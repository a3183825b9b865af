//! Verifying git webhooks: the HMAC-SHA256 of the request body under the
//! shared webhook secret, as GitHub sends it (`X-Hub-Signature-256:
//! sha256=<hex>`) and as Gitea sends it (`X-Gitea-Signature: <hex>`).
//! Pure functions: no I/O.

use axum::http::HeaderMap;
use axum::http::header::HeaderName;
use data_encoding::HEXLOWER_PERMISSIVE;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// GitHub's signature header: `sha256=` and the hex HMAC-SHA256 of the body.
pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
/// GitHub's event header (`push`, `ping`, ...).
pub const GITHUB_EVENT: &str = "x-github-event";
/// Gitea's signature header: the bare hex HMAC-SHA256 of the body.
pub const GITEA_SIGNATURE: &str = "x-gitea-signature";
/// Gitea's event header (`push`, ...).
pub const GITEA_EVENT: &str = "x-gitea-event";

/// Prefix of GitHub's signature value.
const GITHUB_PREFIX: &str = "sha256=";
/// Length of an HMAC-SHA256 in bytes.
const HMAC_SHA256_LEN: usize = 32;

/// Which forge's convention signed a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    GitHub,
    Gitea,
}

/// What a verified webhook asks of the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKind {
    /// An event (usually `push`) after which the source may have a new
    /// revision: fetch it now.
    Fetch {
        convention: Convention,
        /// The event header's value, when it was sent.
        event: Option<String>,
    },
    /// GitHub's `ping`, sent when the hook is created: the secret matches,
    /// and there is nothing to fetch.
    Ping,
}

impl WebhookKind {
    /// Whether the source should be fetched because of this webhook.
    pub fn triggers_fetch(&self) -> bool {
        matches!(self, WebhookKind::Fetch { .. })
    }
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "the configured webhook secret is empty; set a non-empty secret, the same one the git server signs with"
    )]
    EmptySecret,
    #[error(
        "the webhook carries no signature; configure the git server with the webhook secret so it sends {GITHUB_SIGNATURE} (GitHub) or {GITEA_SIGNATURE} (Gitea)"
    )]
    MissingSignature,
    #[error(
        "the {header} header is malformed: expected {expected}, sent once; check the git server's webhook type"
    )]
    MalformedSignature {
        header: &'static str,
        expected: &'static str,
    },
    #[error(
        "the {header} header holds {bytes} bytes where an HMAC-SHA256 has 32; check the git server signs with SHA-256"
    )]
    WrongLength { header: &'static str, bytes: usize },
    #[error(
        "the {header} signature does not match the body: the git server's secret differs from the operator's, or the body was altered"
    )]
    SignatureMismatch { header: &'static str },
}

/// Verifies a webhook's signature against `secret` and says what it asks.
///
/// Every signature header present (GitHub's, Gitea's, or both as Gitea
/// sends for compatibility) must match the body; at least one must be
/// present. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<WebhookKind, WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    let github = single_value(headers, GITHUB_SIGNATURE, "sha256=<64 hex digits>")?;
    let gitea = single_value(headers, GITEA_SIGNATURE, "64 hex digits")?;
    if github.is_none() && gitea.is_none() {
        return Err(WebhookError::MissingSignature);
    }
    if let Some(value) = github {
        let hex = value
            .strip_prefix(GITHUB_PREFIX)
            .ok_or(WebhookError::MalformedSignature {
                header: GITHUB_SIGNATURE,
                expected: "sha256=<64 hex digits>",
            })?;
        check_signature(
            secret,
            GITHUB_SIGNATURE,
            "sha256=<64 hex digits>",
            hex,
            body,
        )?;
    }
    if let Some(hex) = gitea {
        check_signature(secret, GITEA_SIGNATURE, "64 hex digits", hex, body)?;
    }
    let github_event = event(headers, GITHUB_EVENT);
    if github_event.as_deref() == Some("ping") {
        return Ok(WebhookKind::Ping);
    }
    Ok(if gitea.is_some() {
        WebhookKind::Fetch {
            convention: Convention::Gitea,
            event: event(headers, GITEA_EVENT).or(github_event),
        }
    } else {
        WebhookKind::Fetch {
            convention: Convention::GitHub,
            event: github_event,
        }
    })
}

/// The header's value, trimmed, if it is present exactly once and readable.
fn single_value<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<&'h str>, WebhookError> {
    let malformed = WebhookError::MalformedSignature {
        header: name,
        expected,
    };
    let mut values = headers.get_all(HeaderName::from_static(name)).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed);
    }
    let text = value.to_str().map_err(|_| malformed)?;
    Ok(Some(text.trim()))
}

fn check_signature(
    secret: &[u8],
    header: &'static str,
    expected: &'static str,
    hex: &str,
    body: &[u8],
) -> Result<(), WebhookError> {
    let signature = HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| WebhookError::MalformedSignature { header, expected })?;
    if signature.len() != HMAC_SHA256_LEN {
        return Err(WebhookError::WrongLength {
            header,
            bytes: signature.len(),
        });
    }
    let mismatch = WebhookError::SignatureMismatch { header };
    // HMAC takes keys of any length (a long one is hashed first), so this
    // refusal is unreachable; it is one all the same, never a default key.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| mismatch.clone())?;
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| mismatch)
}

fn event(headers: &HeaderMap, name: &'static str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use axum::http::HeaderValue;

    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    /// A trimmed GitHub push payload.
    const PUSH_BODY: &[u8] = br#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"76ae82c7b1a177c8d03f9e96e0adf2466113728f","repository":{"full_name":"acme/zones","clone_url":"https://git.example/acme/zones.git"},"pusher":{"name":"alice"}}"#;

    /// The signature computed independently, with the `hmac` crate.
    fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(body);
        HEXLOWER_PERMISSIVE.encode(&mac.finalize().into_bytes())
    }

    /// The signature computed by `openssl dgst -sha256 -hmac KEY`.
    fn openssl_hex(secret: &[u8], body: &[u8]) -> String {
        let key = std::str::from_utf8(secret).expect("test key is text");
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl CLI missing: install it with `apt-get install openssl`");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(body)
            .expect("write body");
        let output = child.wait_with_output().expect("openssl output");
        assert!(output.status.success(), "openssl failed: {output:?}");
        // `SHA2-256(stdin)= <hex>` (OpenSSL 3) or `(stdin)= <hex>` (1.1)
        let text = String::from_utf8(output.stdout).expect("utf-8");
        text.trim()
            .rsplit_once("= ")
            .map(|(_, hex)| hex.to_owned())
            .expect("openssl prints `...= <hex>`")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    fn github(body: &[u8], event: &str) -> HeaderMap {
        let signature = format!("sha256={}", hmac_hex(SECRET, body));
        headers(&[(GITHUB_SIGNATURE, &signature), (GITHUB_EVENT, event)])
    }

    fn gitea(body: &[u8]) -> HeaderMap {
        headers(&[
            (GITEA_SIGNATURE, &hmac_hex(SECRET, body)),
            (GITEA_EVENT, "push"),
        ])
    }

    #[test]
    fn the_hmac_crate_and_openssl_agree_on_the_fixture() {
        let ours = hmac_hex(SECRET, PUSH_BODY);
        assert_eq!(ours, openssl_hex(SECRET, PUSH_BODY));
        assert_eq!(ours.len(), 64);
    }

    #[test]
    fn githubs_documented_example_verifies() {
        // GitHub's "Validating webhook deliveries" test values
        let body = b"Hello, World!";
        let map = headers(&[(
            GITHUB_SIGNATURE,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert!(verify(SECRET, &map, body).is_ok());
        assert_eq!(openssl_hex(SECRET, body), hmac_hex(SECRET, body));
    }

    #[test]
    fn a_github_push_signed_as_openssl_signs_is_a_fetch() {
        let signature = format!("sha256={}", openssl_hex(SECRET, PUSH_BODY));
        let map = headers(&[(GITHUB_SIGNATURE, &signature), (GITHUB_EVENT, "push")]);
        let kind = verify(SECRET, &map, PUSH_BODY).expect("verified");
        assert_eq!(
            kind,
            WebhookKind::Fetch {
                convention: Convention::GitHub,
                event: Some("push".to_owned())
            }
        );
        assert!(kind.triggers_fetch());
    }

    #[test]
    fn a_gitea_push_signed_as_openssl_signs_is_a_fetch() {
        let map = headers(&[
            (GITEA_SIGNATURE, &openssl_hex(SECRET, PUSH_BODY)),
            (GITEA_EVENT, "push"),
        ]);
        let kind = verify(SECRET, &map, PUSH_BODY).expect("verified");
        assert_eq!(
            kind,
            WebhookKind::Fetch {
                convention: Convention::Gitea,
                event: Some("push".to_owned())
            }
        );
    }

    #[test]
    fn gitea_sending_both_headers_is_verified_on_both() {
        let hex = hmac_hex(SECRET, PUSH_BODY);
        let both = headers(&[
            (GITHUB_SIGNATURE, &format!("sha256={hex}")),
            (GITEA_SIGNATURE, &hex),
            (GITEA_EVENT, "push"),
            (GITHUB_EVENT, "push"),
        ]);
        let kind = verify(SECRET, &both, PUSH_BODY).expect("verified");
        assert!(matches!(
            kind,
            WebhookKind::Fetch {
                convention: Convention::Gitea,
                ..
            }
        ));
        let wrong = hmac_hex(b"another secret", PUSH_BODY);
        let one_wrong = headers(&[
            (GITHUB_SIGNATURE, &format!("sha256={hex}")),
            (GITEA_SIGNATURE, &wrong),
        ]);
        assert_eq!(
            verify(SECRET, &one_wrong, PUSH_BODY),
            Err(WebhookError::SignatureMismatch {
                header: GITEA_SIGNATURE
            })
        );
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let hex = hmac_hex(SECRET, PUSH_BODY).to_uppercase();
        let map = headers(&[(GITEA_SIGNATURE, &hex)]);
        assert!(verify(SECRET, &map, PUSH_BODY).is_ok());
    }

    #[test]
    fn a_github_ping_is_accepted_but_fetches_nothing() {
        let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
        let kind = verify(SECRET, &github(body, "ping"), body).expect("verified");
        assert_eq!(kind, WebhookKind::Ping);
        assert!(!kind.triggers_fetch());
    }

    #[test]
    fn a_ping_with_a_wrong_signature_is_still_refused() {
        let body = br#"{"zen":"x"}"#;
        let map = github(b"another body", "ping");
        assert_eq!(
            verify(SECRET, &map, body),
            Err(WebhookError::SignatureMismatch {
                header: GITHUB_SIGNATURE
            })
        );
    }

    #[test]
    fn an_empty_secret_refuses_everything() {
        let empty_signed = headers(&[(GITEA_SIGNATURE, &hmac_hex(b"", PUSH_BODY))]);
        assert_eq!(
            verify(b"", &empty_signed, PUSH_BODY),
            Err(WebhookError::EmptySecret)
        );
        assert_eq!(
            verify(b"", &HeaderMap::new(), PUSH_BODY),
            Err(WebhookError::EmptySecret)
        );
    }

    #[test]
    fn no_signature_header_is_refused() {
        let map = headers(&[(GITHUB_EVENT, "push"), (GITEA_EVENT, "push")]);
        assert_eq!(
            verify(SECRET, &map, PUSH_BODY),
            Err(WebhookError::MissingSignature)
        );
        // the SHA-1 header alone is not enough
        let sha1 = headers(&[(
            "x-hub-signature",
            "sha1=0123456789abcdef0123456789abcdef01234567",
        )]);
        assert_eq!(
            verify(SECRET, &sha1, PUSH_BODY),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn malformed_signatures_are_refused() {
        let good = hmac_hex(SECRET, PUSH_BODY);
        let github_malformed = Err(WebhookError::MalformedSignature {
            header: GITHUB_SIGNATURE,
            expected: "sha256=<64 hex digits>",
        });
        let gitea_malformed = Err(WebhookError::MalformedSignature {
            header: GITEA_SIGNATURE,
            expected: "64 hex digits",
        });
        // GitHub's value without its prefix, or with SHA-1's
        let bare = headers(&[(GITHUB_SIGNATURE, &good)]);
        assert_eq!(verify(SECRET, &bare, PUSH_BODY), github_malformed);
        let sha1 = headers(&[(GITHUB_SIGNATURE, &format!("sha1={good}"))]);
        assert_eq!(verify(SECRET, &sha1, PUSH_BODY), github_malformed);
        // not hex
        let not_hex = format!("{}zz", &good[..62]);
        let map = headers(&[(GITEA_SIGNATURE, &not_hex)]);
        assert_eq!(verify(SECRET, &map, PUSH_BODY), gitea_malformed);
        let map = headers(&[(GITHUB_SIGNATURE, &format!("sha256={not_hex}"))]);
        assert_eq!(verify(SECRET, &map, PUSH_BODY), github_malformed);
        // an odd number of digits
        let map = headers(&[(GITEA_SIGNATURE, &good[..63])]);
        assert_eq!(verify(SECRET, &map, PUSH_BODY), gitea_malformed);
        // the header twice, even with the right value
        let twice = headers(&[(GITEA_SIGNATURE, &good), (GITEA_SIGNATURE, &good)]);
        assert_eq!(verify(SECRET, &twice, PUSH_BODY), gitea_malformed);
        // bytes that are no text
        let mut binary = HeaderMap::new();
        binary.insert(
            GITEA_SIGNATURE,
            HeaderValue::from_bytes(b"\xff\xfe").expect("opaque header bytes"),
        );
        assert_eq!(verify(SECRET, &binary, PUSH_BODY), gitea_malformed);
    }

    #[test]
    fn signatures_of_the_wrong_length_are_refused() {
        let good = hmac_hex(SECRET, PUSH_BODY);
        let short = headers(&[(GITEA_SIGNATURE, &good[..62])]);
        assert_eq!(
            verify(SECRET, &short, PUSH_BODY),
            Err(WebhookError::WrongLength {
                header: GITEA_SIGNATURE,
                bytes: 31
            })
        );
        let long = headers(&[(GITHUB_SIGNATURE, &format!("sha256={good}00"))]);
        assert_eq!(
            verify(SECRET, &long, PUSH_BODY),
            Err(WebhookError::WrongLength {
                header: GITHUB_SIGNATURE,
                bytes: 33
            })
        );
        let empty = headers(&[(GITHUB_SIGNATURE, "sha256=")]);
        assert_eq!(
            verify(SECRET, &empty, PUSH_BODY),
            Err(WebhookError::WrongLength {
                header: GITHUB_SIGNATURE,
                bytes: 0
            })
        );
    }

    #[test]
    fn a_signature_under_another_secret_is_refused() {
        let map = headers(&[(GITEA_SIGNATURE, &hmac_hex(b"not the secret", PUSH_BODY))]);
        assert_eq!(
            verify(SECRET, &map, PUSH_BODY),
            Err(WebhookError::SignatureMismatch {
                header: GITEA_SIGNATURE
            })
        );
    }

    #[test]
    fn a_body_altered_by_one_byte_is_refused_under_both_conventions() {
        let mut altered = PUSH_BODY.to_vec();
        let last = altered.len() - 2;
        altered[last] ^= 0x01;
        assert_eq!(
            verify(SECRET, &github(PUSH_BODY, "push"), &altered),
            Err(WebhookError::SignatureMismatch {
                header: GITHUB_SIGNATURE
            })
        );
        assert_eq!(
            verify(SECRET, &gitea(PUSH_BODY), &altered),
            Err(WebhookError::SignatureMismatch {
                header: GITEA_SIGNATURE
            })
        );
        // and one byte appended
        let mut longer = PUSH_BODY.to_vec();
        longer.push(b' ');
        assert!(verify(SECRET, &gitea(PUSH_BODY), &longer).is_err());
    }

    #[test]
    fn refusals_never_echo_the_secret_or_the_signature() {
        let hex = hmac_hex(b"not the secret", PUSH_BODY);
        let map = headers(&[(GITEA_SIGNATURE, &hex)]);
        let error = verify(SECRET, &map, PUSH_BODY).expect_err("refused");
        let message = error.to_string();
        assert!(!message.contains(&hex), "{message}");
        assert!(!message.contains("Secret to Everybody"), "{message}");
    }
}
