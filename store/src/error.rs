//! The store's error type. Messages never hold secrets or connection passwords.

use zentralink_model::secrets::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist for this tenant (it may exist for another: that is not said).
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed, schema left unchanged: {0}")]
    Migration(String),
    #[error(transparent)]
    Secret(SecretError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                StoreError::Conflict(
                    db.constraint()
                        .map(|c| format!("{c} already holds this value"))
                        .unwrap_or_else(|| db.message().to_owned()),
                )
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => {
                // A reference to another tenant's row fails the composite foreign key: not found.
                StoreError::NotFound
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}
