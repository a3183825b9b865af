//! The web service's error type and how each error answers: a redirect to
//! sign in, a 404 that never says whether another tenant has the object, or
//! an error page that shows only a request id (the cause goes to the log,
//! see `hardening`). No I/O.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use zentralink_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not there, or not this tenant's (never said which).
    #[error("not found")]
    NotFound,
    /// No session: sign in first.
    #[error("not signed in")]
    LoginRequired,
    /// The password was right; the second factor is still to come.
    #[error("second factor required")]
    SecondFactorRequired,
    #[error("the form's CSRF token is missing or does not belong to this session")]
    Csrf,
    /// A member of this tenant whose role lacks the permission.
    #[error("your role does not have the {0:?} permission")]
    Forbidden(crate::roles::Permission),
    #[error("a cross-origin request that changes state was refused")]
    CrossOrigin,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("template could not be rendered: {0}")]
    Template(#[from] minijinja::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
    #[error("TOTP: {0}")]
    Totp(String),
    #[error("{0}")]
    Internal(String),
}

/// Attached to an error response: the cause, for the log, never for the page.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// Attached to a response whose error status comes with its own page (a
/// login form with a message), which the error-page layer leaves as it is.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound | WebError::Store(StoreError::NotFound) => StatusCode::NOT_FOUND,
            WebError::LoginRequired | WebError::SecondFactorRequired => StatusCode::SEE_OTHER,
            WebError::Csrf | WebError::CrossOrigin | WebError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::LoginRequired => redirect("/login"),
            WebError::SecondFactorRequired => redirect("/login/2fa"),
            other => {
                let mut response = other.status().into_response();
                response
                    .extensions_mut()
                    .insert(ErrorCause(other.to_string()));
                response
            }
        }
    }
}

/// A 303 to a path of this service.
pub fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}
