//! The one error type of the HTTP layer, answered as RFC 9457 problem+json.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::platform::db::StorageError;
use crate::platform::domain::{FieldError, Role};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("the request body is not valid JSON: {detail}")]
    MalformedBody { detail: String },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("authentication required")]
    Unauthorized { detail: &'static str },
    #[error("not allowed")]
    Forbidden { detail: &'static str },
    #[error("not found")]
    NotFound,
    /// The path is served, not with this method: `allow` lists those it is.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("conflict: {detail}")]
    Conflict {
        reason: &'static str,
        detail: String,
    },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Bounded work (password hashing) has no free slot: a 503 that says
    /// when to retry, not logged as a fault.
    #[error("too busy")]
    Busy { retry_after_secs: u64 },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    /// Refused for want of `role`.
    pub fn only(role: Role) -> Self {
        Self::Forbidden {
            detail: match role {
                Role::Admin => "only admins may do this",
                Role::Editor | Role::Reader => "only editors may do this",
            },
        }
    }

    pub fn field(field: &str, reason: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            field: field.to_owned(),
            reason,
            message: message.into(),
        }])
    }
}

impl From<crate::platform::audit::service::AuditError> for AppError {
    fn from(error: crate::platform::audit::service::AuditError) -> Self {
        match error {
            crate::platform::audit::service::AuditError::Forbidden(role) => Self::only(role),
            crate::platform::audit::service::AuditError::Storage(e) => e.into(),
        }
    }
}

impl From<crate::platform::mail::service::OutboxError> for AppError {
    fn from(error: crate::platform::mail::service::OutboxError) -> Self {
        match error {
            crate::platform::mail::service::OutboxError::Forbidden => Self::only(Role::Admin),
            crate::platform::mail::service::OutboxError::Storage(e) => e.into(),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

/// An RFC 9457 problem: what every error is answered with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// A relative URI naming the kind of problem, `/problems/validation`.
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    /// Each refused field, for `/problems/validation`.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<FieldError>, required = false)]
    errors: &'a [FieldError],
    /// A stable code for a conflict, `already_decided`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl AppError {
    /// The problem's type, title, detail and reason: what a client is told,
    /// never more.
    pub fn parts(&self) -> (&'static str, &'static str, String, Option<&'static str>) {
        match self {
            Self::Validation(errors) => (
                "/problems/validation",
                "The request has invalid fields",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                None,
            ),
            Self::MalformedBody { detail } => (
                "/problems/malformed-body",
                "The request body is not valid JSON",
                detail.clone(),
                None,
            ),
            Self::UnsupportedMediaType => (
                "/problems/unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json".to_owned(),
                None,
            ),
            Self::PayloadTooLarge { limit } => (
                "/problems/payload-too-large",
                "Request body too large",
                format!("the body may be at most {limit} bytes"),
                None,
            ),
            Self::Unauthorized { detail } => (
                "/problems/unauthorized",
                "Authentication required",
                (*detail).to_owned(),
                None,
            ),
            Self::Forbidden { detail } => (
                "/problems/forbidden",
                "Not allowed",
                (*detail).to_owned(),
                None,
            ),
            Self::NotFound => (
                "/problems/not-found",
                "Not found",
                "nothing is here".to_owned(),
                None,
            ),
            Self::MethodNotAllowed { allow } => (
                "/problems/method-not-allowed",
                "Method not allowed",
                format!("this path answers {allow}"),
                None,
            ),
            Self::Conflict { reason, detail } => (
                "/problems/conflict",
                "Conflict",
                detail.clone(),
                Some(*reason),
            ),
            Self::RateLimited { retry_after_secs } => (
                "/problems/rate-limited",
                "Too many attempts",
                format!("try again in {retry_after_secs} seconds"),
                None,
            ),
            Self::Unavailable(_) => (
                "/problems/unavailable",
                "Service unavailable",
                "the service is briefly unavailable; please retry".to_owned(),
                None,
            ),
            Self::Busy { retry_after_secs } => (
                "/problems/busy",
                "Service busy",
                format!("the service is busy; try again in {retry_after_secs} seconds"),
                None,
            ),
            Self::Internal(_) => (
                "/problems/internal",
                "Internal error",
                "something went wrong on our side".to_owned(),
                None,
            ),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody { .. } => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Unavailable(source) => tracing::error!(error = ?source, "service unavailable"),
            Self::Internal(source) => tracing::error!(error = ?source, "internal error"),
            _ => {}
        }
        let (kind, title, detail, reason) = self.parts();
        let errors = match self {
            Self::Validation(errors) => errors.as_slice(),
            _ => &[],
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Self::RateLimited { retry_after_secs } | Self::Busy { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        response.json(Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors,
            reason,
        })
    }
}
