//! Every error the API returns, as RFC 9457 `application/problem+json` with a stable `code`.
//!
//! One table ([`ErrorCode::meta`]) maps each code to its HTTP status and title, so the same failure always looks the
//! same to scripts and SDKs. Codes are part of the API contract: add new ones, never rename old ones.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use relaywatch_store::StoreError;
use serde::Serialize;
use std::fmt;
use utoipa::ToSchema;

/// The stable machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MissingCredentials,
    InvalidToken,
    TokenExpired,
    InvalidApiKey,
    InvalidCredentials,
    InsufficientScope,
    InstallationAdminRequired,
    NotFound,
    AlreadyExists,
    ValidationFailed,
    MalformedBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidQuery,
    DatabaseUnavailable,
    Internal,
    WebhookDisabled,
    DeliveryInProgress,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::MissingCredentials,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::InvalidApiKey,
        ErrorCode::InvalidCredentials,
        ErrorCode::InsufficientScope,
        ErrorCode::InstallationAdminRequired,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::ValidationFailed,
        ErrorCode::MalformedBody,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidQuery,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::Internal,
        ErrorCode::WebhookDisabled,
        ErrorCode::DeliveryInProgress,
    ];

    /// The table: HTTP status, stable code, short title.
    pub fn meta(self) -> (StatusCode, &'static str, &'static str) {
        use ErrorCode::*;
        match self {
            MissingCredentials => (
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "Authentication required",
            ),
            InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The bearer token is invalid",
            ),
            TokenExpired => (
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "The bearer token has expired",
            ),
            InvalidApiKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "The API key is unknown, revoked or expired",
            ),
            InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Wrong email or password",
            ),
            InsufficientScope => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "The credentials lack a required scope",
            ),
            InstallationAdminRequired => (
                StatusCode::FORBIDDEN,
                "installation_admin_required",
                "Only installation administrators may do this",
            ),
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            AlreadyExists => (
                StatusCode::CONFLICT,
                "already_exists",
                "The object already exists",
            ),
            ValidationFailed => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "The request body is invalid",
            ),
            MalformedBody => (
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "The request body is not well-formed JSON",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The request body must be application/json",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large",
            ),
            InvalidQuery => (
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "The query string is invalid",
            ),
            DatabaseUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "The database is unavailable or not migrated",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            WebhookDisabled => (
                StatusCode::CONFLICT,
                "webhook_disabled",
                "The webhook endpoint is disabled",
            ),
            DeliveryInProgress => (
                StatusCode::CONFLICT,
                "delivery_in_progress",
                "The delivery is queued or being delivered already",
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.meta().1
    }
}

/// One invalid field of a request body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer-like path of the field (`domain`, `scopes[1]`).
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type; stable per `code`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`, `insufficient_scope`.
    pub code: String,
    /// For `validation_failed`: which fields are wrong and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error a handler returns.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// A 422 naming the field that is wrong.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            code: ErrorCode::ValidationFailed,
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    pub fn internal(err: impl fmt::Display) -> Self {
        // The cause is logged once here, at the boundary; the client gets no internals.
        tracing::error!(error = %err, "request failed");
        Self::new(
            ErrorCode::Internal,
            "an internal error occurred; it has been logged",
        )
    }

    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.code.meta();
        Problem {
            kind: format!("https://relaywatch.dev/problems/{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: code.to_string(),
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.meta().0
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            res.insert_header(("WWW-Authenticate", "Bearer realm=\"relaywatch\""));
        }
        res.content_type("application/problem+json")
            .json(self.problem())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => {
                ApiError::new(ErrorCode::AlreadyExists, format!("{what} already exists"))
            }
            other => ApiError::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Error handlers for actix's extractors, so malformed input gets the same problem documents as everything else.
pub mod extractors {
    use super::*;
    use actix_web::HttpRequest;
    use actix_web::error::{PathError, QueryPayloadError};

    pub fn query(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
        ApiError::new(ErrorCode::InvalidQuery, err.to_string()).into()
    }

    /// A path that does not parse (an id that is not a UUID) names nothing that exists: 404, like an unknown id.
    pub fn path(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
        ApiError::not_found("object").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let all = ErrorCode::ALL;
        let mut codes: Vec<_> = all.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|c| c.meta().0.as_u16() >= 400));
    }
}
