//! Posted forms: the fields as typed, checked for a form token, and the
//! state a page needs to show them again with their errors (Django's bound
//! form; GOV.UK's error summary and messages beside each field).

use std::collections::BTreeMap;

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use super::security;
use super::Site;
use crate::http::extract::read_body;
use crate::platform::domain::FieldError;
use crate::platform::error::AppError;
use crate::state::AppState;

/// The fields of an `application/x-www-form-urlencoded` POST whose form
/// token is genuine. A handler that takes it cannot forget the check.
#[derive(Debug)]
pub struct Posted {
    fields: Vec<(String, String)>,
}

impl Posted {
    /// The first value of `name`, or "".
    pub fn value(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    }

    /// A field left out, or sent empty, is `None`.
    pub fn optional(&self, name: &str) -> Option<String> {
        Some(self.value(name).trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Every value of `name`: checkboxes that share it.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.fields.iter().any(|(key, _)| key == name)
    }
}

impl FromRequest for Posted {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let (Some(state), Some(site)) = (
                req.app_data::<Data<AppState>>().cloned(),
                req.app_data::<Data<Site>>().cloned(),
            ) else {
                return Err(AppError::Internal(anyhow::anyhow!("no app state")));
            };
            let is_form = matches!(
                req.mime_type(),
                Ok(Some(mime)) if mime.essence_str() == "application/x-www-form-urlencoded"
            );
            if !is_form {
                return Err(AppError::UnsupportedMediaType);
            }
            let body = read_body(payload, state.settings.server.body_limit_bytes).await?;
            let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let posted = Self { fields };
            let token = posted.value(security::FIELD);
            if !site.tokens.verify(&req, &token, state.clock.now()) {
                return Err(AppError::Forbidden {
                    detail: "this form has expired or was not sent from this site; \
                             go back, reload the page and try again",
                });
            }
            Ok(posted)
        })
    }
}

/// A form as a page shows it: what was typed, and what was wrong with it.
#[derive(Debug, Default, Serialize)]
pub struct Form {
    pub values: BTreeMap<String, String>,
    /// Every value of multi-valued fields (checkboxes).
    pub lists: BTreeMap<String, Vec<String>>,
    pub errors: Vec<FieldError>,
    /// The first message per field, for the field itself.
    pub error_of: BTreeMap<String, String>,
}

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    pub fn with_list(mut self, name: &str, values: Vec<String>) -> Self {
        self.lists.insert(name.to_owned(), values);
        self
    }

    /// Keeps what was posted in `names` (never a password).
    pub fn from_posted(posted: &Posted, names: &[&str]) -> Self {
        let mut form = Self::new();
        for name in names {
            form.values.insert((*name).to_owned(), posted.value(name));
        }
        form
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        for error in &errors {
            self.error_of
                .entry(error.field.clone())
                .or_insert_with(|| error.message.clone());
        }
        self.errors.extend(errors);
        self
    }

    pub fn with_error(self, field: &str, reason: &'static str, message: &str) -> Self {
        self.with_errors(vec![FieldError {
            field: field.to_owned(),
            reason,
            message: message.to_owned(),
        }])
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// 422 for a form shown again with its errors, else 200.
    pub fn status(&self) -> actix_web::http::StatusCode {
        if self.has_errors() {
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
        } else {
            actix_web::http::StatusCode::OK
        }
    }
}

/// The field errors inside a service's error, if that is what it is.
pub fn field_errors(error: &AppError) -> Option<Vec<FieldError>> {
    match error {
        AppError::Validation(errors) => Some(errors.clone()),
        _ => None,
    }
}
