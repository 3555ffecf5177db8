//! The messages the newsletter sends, one type each.

use serde::Serialize;

use crate::platform::mail::{Email, Stream};

/// The double opt-in. It is the reply to a request, not a newsletter
/// issue, so it goes out from the transactional sender.
#[derive(Debug, Serialize)]
pub struct ConfirmSubscription {
    pub link: String,
    pub expires_hours: i64,
    pub sections: Vec<String>,
}

impl Email for ConfirmSubscription {
    const TEMPLATE: &'static str = "newsletter_confirm";

    fn subject(&self, site_name: &str) -> String {
        format!("Confirm your subscription to the {site_name} daily newsletter")
    }
}

#[derive(Debug, Serialize)]
pub struct Welcome {
    pub sections: Vec<String>,
    pub preferences_link: String,
    pub unsubscribe_link: String,
}

impl Email for Welcome {
    const TEMPLATE: &'static str = "newsletter_welcome";
    const STREAM: Stream = Stream::Newsletter;

    fn subject(&self, site_name: &str) -> String {
        format!("Welcome to the {site_name} daily newsletter")
    }
}
