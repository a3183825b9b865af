//! Password and backup-code hashing: argon2id with m = 19 MiB, t = 2, p = 1,
//! run on tokio's blocking threads behind a semaphore, so a burst of sign-ins
//! (200 at once) waits its turn instead of taking 19 MiB each and starving
//! the rest of the service. Does no I/O besides the blocking pool.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zentralink_model::secrets::SecretString;

use crate::error::WebError;

/// argon2id memory cost in KiB (19 MiB), iterations and lanes.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

/// The longest a hash waits for its turn before the request is refused.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(20);

/// Passwords longer than this are refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and verifies on a bounded pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash to verify against when the account does not exist, so a
    /// wrong e-mail takes as long as a wrong password.
    dummy: Arc<OnceLock<String>>,
}

fn argon2id() -> Result<Argon2<'static>, WebError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| WebError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(secret: &[u8]) -> Result<String, WebError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| WebError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| WebError::Hash(e.to_string()))?;
    Ok(argon2id()?
        .hash_password(secret, &salt)
        .map_err(|e| WebError::Hash(e.to_string()))?
        .to_string())
}

fn verify_now(secret: &[u8], phc: &str) -> Result<bool, WebError> {
    let parsed = PasswordHash::new(phc).map_err(|e| WebError::Hash(e.to_string()))?;
    // The parameters come from the stored hash, so older hashes still verify.
    Ok(argon2id()?.verify_password(secret, &parsed).is_ok())
}

impl PasswordHasher {
    /// A hasher computing at most `concurrency` hashes at once (at least one).
    pub fn new(concurrency: usize) -> Result<Self, WebError> {
        argon2id()?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(OnceLock::new()),
        })
    }

    /// Runs `work` on a blocking thread once a permit is free.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, WebError> + Send + 'static,
    ) -> Result<T, WebError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| WebError::Hash("too many sign-ins at once; try again".into()))?
            .map_err(|e| WebError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let outcome = work();
            drop(permit);
            outcome
        })
        .await
        .map_err(|e| WebError::Hash(e.to_string()))?
    }

    /// An argon2id PHC string of the secret, with a fresh random salt.
    pub async fn hash(&self, secret: &SecretString) -> Result<String, WebError> {
        let secret = secret.clone();
        self.bounded(move || hash_now(secret.expose().as_bytes()))
            .await
    }

    /// Whether the secret matches the PHC string; with `None` (no such
    /// account) it spends the same time and answers false.
    pub async fn verify(&self, secret: &SecretString, phc: Option<&str>) -> Result<bool, WebError> {
        let secret = secret.clone();
        let phc = phc.map(str::to_owned);
        let dummy = self.dummy.clone();
        self.bounded(move || match phc {
            Some(phc) => verify_now(secret.expose().as_bytes(), &phc),
            None => {
                let phc = match dummy.get() {
                    Some(phc) => phc.clone(),
                    None => {
                        let made = hash_now(b"no account has this password")?;
                        dummy.get_or_init(|| made).clone()
                    }
                };
                verify_now(secret.expose().as_bytes(), &phc).map(|_| false)
            }
        })
        .await
    }

    /// How many hashes could start right now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn hashes_are_argon2id_with_the_required_parameters() {
        let hasher = PasswordHasher::new(2).unwrap();
        let phc = hasher
            .hash(&SecretString::new("correct horse"))
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            hasher
                .verify(&SecretString::new("correct horse"), Some(&phc))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&SecretString::new("wrong"), Some(&phc))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&SecretString::new("correct horse"), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn no_more_hashes_run_than_the_pool_allows() {
        let hasher = PasswordHasher::new(2).unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let h = hasher.clone();
            tasks.push(tokio::spawn(async move {
                h.hash(&SecretString::new(format!("pw{i}"))).await
            }));
        }
        let mut lowest = usize::MAX;
        while tasks.iter().any(|t| !t.is_finished()) {
            lowest = lowest.min(hasher.available());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(lowest, 0, "the pool was never full: the test saw nothing");
        assert_eq!(hasher.available(), 2);
    }
}
