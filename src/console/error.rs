//! The console's error type and its one mapping to HTTP: people get an HTML page (or, when not
//! signed in, a redirect to the sign-in page), never the API's JSON.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::db::DbError;

/// Everything a console handler can answer besides its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No (valid) session: go and sign in, then come back to `next`.
    #[error("sign in first")]
    SignIn { next: String },
    #[error("{0}")]
    BadRequest(String),
    /// Signed in, but not allowed (too small a scope, a missing or wrong form token).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected; logged once with its cause, shown without it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::SignIn { next } = self {
            let to = format!(
                "/console/signin?{}",
                serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
            );
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let message = match self {
            ConsoleError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "console request failed");
                "Something went wrong on the server; its log has the details.".to_string()
            }
            other => other.to_string(),
        };
        let status = self.status_code();
        let page = super::views::error_page(status, &message);
        HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(page.into_string())
    }
}

impl From<DbError> for ConsoleError {
    fn from(err: DbError) -> ConsoleError {
        match err {
            DbError::Unavailable(e) => {
                tracing::warn!(error = %e, "no database connection");
                ConsoleError::Unavailable(
                    "The database is not reachable; try again shortly.".into(),
                )
            }
            other => ConsoleError::Internal(other.into()),
        }
    }
}

impl From<diesel::result::Error> for ConsoleError {
    fn from(err: diesel::result::Error) -> ConsoleError {
        ConsoleError::from(DbError::Query(err))
    }
}

impl crate::db::RunError for ConsoleError {
    type Out = ConsoleError;
    fn into_out(self) -> ConsoleError {
        self
    }
}
