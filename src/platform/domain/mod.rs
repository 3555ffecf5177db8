//! Value types that parse, never merely validate: once built, they are valid.

mod email;
pub mod mail_domains;
mod password;
mod people;
mod slug;
mod text;
mod token;

pub use email::EmailAddress;
pub use password::Password;
pub use people::{AccountId, Role};
pub use slug::Slug;
pub use text::{optional_text, PlainText};
pub use token::{Token, TokenHash};

use serde::Serialize;

/// Why a value was refused: a stable code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    pub fn on(self, field: &str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            reason: self.reason,
            message: self.message,
        }
    }
}

/// One refused field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name, with its path inside the body: `sections[2]`.
    pub field: String,
    /// A stable code for programs: `required`, `too_long`, `invalid_format` …
    pub reason: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// Collects every refused field of a request, so the client hears of all of
/// them at once.
#[derive(Debug, Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn take<T>(&mut self, field: &str, parsed: Result<T, Invalid>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.errors.push(invalid.on(field));
                None
            }
        }
    }

    pub fn reject(&mut self, field: &str, invalid: Invalid) {
        self.errors.push(invalid.on(field));
    }

    /// The errors, or `Ok` when there were none.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// A stored enum value that this binary does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of {expected:?})")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}
