//! The API error type and its one mapping to HTTP: every 4xx/5xx answer is
//! `{"error": kind, "message": ..., "details": [...]}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::DbError;
use crate::domain::FieldError;

/// Everything an API handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many requests; the client may retry after this many seconds.
    #[error("{0}")]
    TooManyRequests(String, u64),
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected; logged once with its cause, answered without it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 listing per-field problems.
    pub fn validation(message: impl Into<String>, details: Vec<FieldError>) -> ApiError {
        ApiError::Validation {
            message: message.into(),
            details,
        }
    }

    /// Query parameters refused: the message names each, the details say why.
    pub fn invalid_params(problems: Vec<FieldError>) -> ApiError {
        let names: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        ApiError::validation(
            format!("invalid query parameters: {}", names.join(", ")),
            problems,
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::TooManyRequests(..) => "too_many_requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The body of every error answer, whatever the endpoint (the OpenAPI document's `Error`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// The kind of error.
    #[schema(value_type = String, example = "validation", pattern = "^[a-z_]+$")]
    pub error: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// One entry per field at fault (empty unless `error` is `validation`).
    pub details: Vec<FieldError>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                "internal error; the server log has the details".to_string()
            }
            other => other.to_string(),
        };
        let details = match self {
            ApiError::Validation { details, .. } => details.clone(),
            _ => Vec::new(),
        };
        let mut builder = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            builder.insert_header(("WWW-Authenticate", "Token"));
        }
        if let ApiError::TooManyRequests(_, retry_after_s) = self {
            builder.insert_header(("Retry-After", retry_after_s.max(&1).to_string()));
        }
        builder.json(ErrorBody {
            error: self.kind(),
            message,
            details,
        })
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> ApiError {
        match err {
            DbError::Unavailable(e) => {
                tracing::warn!(error = %e, "no database connection");
                ApiError::Unavailable("the database is not reachable; try again shortly".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl crate::db::RunError for ApiError {
    type Out = ApiError;
    fn into_out(self) -> ApiError {
        self
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> ApiError {
        ApiError::from(DbError::Query(err))
    }
}
