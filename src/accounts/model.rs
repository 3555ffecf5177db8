use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::platform::db::schema::{account_tokens, accounts, sessions};
pub use crate::platform::domain::{AccountId, Role};
use crate::platform::domain::{EmailAddress, TokenHash};

crate::text_enum! {
    pub enum TokenPurpose {
        VerifyEmail => "verify_email",
        PasswordReset => "password_reset",
    }
}

/// An account as the rest of the system sees it; the password hash is read
/// only where it is checked.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: AccountId,
    pub email: EmailAddress,
    pub name: String,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub role: Role,
    pub email_verified_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = accounts, treat_none_as_default_value = false)]
pub struct NewAccount<'a> {
    pub id: AccountId,
    pub email: &'a EmailAddress,
    pub name: &'a str,
    pub company: Option<&'a str>,
    pub job_title: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
    pub email_verified_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct NewSession<'a> {
    pub token_hash: &'a TokenHash,
    pub account_id: AccountId,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = account_tokens, treat_none_as_default_value = false)]
pub struct NewAccountToken<'a> {
    pub token_hash: &'a TokenHash,
    pub account_id: AccountId,
    pub purpose: TokenPurpose,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}
