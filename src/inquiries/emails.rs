//! The two messages an inquiry sends, one type each.

use serde::Serialize;

use crate::platform::mail::Email;

/// To the sender. It carries nothing they typed but the number of seats:
/// the address is whatever someone entered in a public form, so quoting
/// their name, company or message would let anyone send text of their
/// choosing to a third party under our name.
#[derive(Debug, Serialize)]
pub struct InquiryReceived {
    pub seats: i32,
    pub read_link: String,
    pub newsletter_link: String,
}

impl Email for InquiryReceived {
    const TEMPLATE: &'static str = "inquiry_received";

    fn subject(&self, site_name: &str) -> String {
        format!("Your {site_name} subscription inquiry")
    }
}

/// To sales: the whole inquiry, as typed (plain text; the HTML part
/// escapes it).
#[derive(Debug, Serialize)]
pub struct InquiryForSales {
    pub name: String,
    pub email: String,
    pub company: String,
    pub seats: i32,
    pub message: Option<String>,
    pub received_at: String,
    pub console_link: String,
}

impl Email for InquiryForSales {
    const TEMPLATE: &'static str = "inquiry_sales";

    fn subject(&self, _site_name: &str) -> String {
        format!(
            "Sales inquiry: {}, {} seat{}",
            self.company,
            self.seats,
            if self.seats == 1 { "" } else { "s" }
        )
    }
}
