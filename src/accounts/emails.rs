//! The messages accounts send, one type each.

use serde::Serialize;

use crate::platform::mail::Email;

/// Greets no one by name: the name was typed by whoever registered, who
/// need not own the address, and must not be a way to put words into mail
/// from the site.
#[derive(Debug, Serialize)]
pub struct VerifyEmail {
    pub link: String,
    pub expires_hours: i64,
}

impl Email for VerifyEmail {
    const TEMPLATE: &'static str = "verify_email";

    fn subject(&self, site_name: &str) -> String {
        format!("Confirm your email address for {site_name}")
    }
}

/// Sent instead of a verification when the address already has an account,
/// so that registration answers the same either way. No name either: the
/// account's may never have been verified.
#[derive(Debug, Serialize)]
pub struct AccountExists {
    pub login_link: String,
    pub reset_link: String,
}

impl Email for AccountExists {
    const TEMPLATE: &'static str = "account_exists";

    fn subject(&self, site_name: &str) -> String {
        format!("You already have a {site_name} account")
    }
}

/// Greets no one by name: anyone can ask for it, for any address, and the
/// name was typed by whoever registered it.
#[derive(Debug, Serialize)]
pub struct PasswordReset {
    pub link: String,
    pub expires_minutes: i64,
}

impl Email for PasswordReset {
    const TEMPLATE: &'static str = "password_reset";

    fn subject(&self, site_name: &str) -> String {
        format!("Reset your {site_name} password")
    }
}

#[derive(Debug, Serialize)]
pub struct PasswordChanged {
    pub name: String,
    pub reset_link: String,
}

impl Email for PasswordChanged {
    const TEMPLATE: &'static str = "password_changed";

    fn subject(&self, site_name: &str) -> String {
        format!("Your {site_name} password was changed")
    }
}
