//! The messages of company access, one type each.

use serde::Serialize;

use crate::platform::mail::Email;

/// To an address of a subscribing company with a free seat.
#[derive(Debug, Serialize)]
pub struct CompanyJoinLink {
    pub organization: String,
    pub link: String,
    pub expires_hours: i64,
}

impl Email for CompanyJoinLink {
    const TEMPLATE: &'static str = "company_join_link";

    fn subject(&self, site_name: &str) -> String {
        format!("Join {}'s {site_name} subscription", self.organization)
    }
}

/// To an address of a subscribing company whose seats are all taken.
#[derive(Debug, Serialize)]
pub struct CompanySeatsTaken {
    pub organization: String,
    pub trial_link: String,
    pub contact_sales_link: String,
}

impl Email for CompanySeatsTaken {
    const TEMPLATE: &'static str = "company_seats_taken";

    fn subject(&self, site_name: &str) -> String {
        format!("Your company's {site_name} seats are all taken")
    }
}

/// To the organisation's managers and to sales, at most once a day per
/// organisation: someone asked for a seat and none was free.
#[derive(Debug, Serialize)]
pub struct CompanySeatsFull {
    pub organization: String,
    pub seat_count: i32,
    pub email_domain: String,
}

impl Email for CompanySeatsFull {
    const TEMPLATE: &'static str = "company_seats_full";

    fn subject(&self, _site_name: &str) -> String {
        format!(
            "{}: a reader asked for a seat, none is free",
            self.organization
        )
    }
}

/// To an address whose domain no subscribing company has.
#[derive(Debug, Serialize)]
pub struct CompanyNoMatch {
    pub trial_link: String,
    pub contact_sales_link: String,
}

impl Email for CompanyNoMatch {
    const TEMPLATE: &'static str = "company_no_match";

    fn subject(&self, site_name: &str) -> String {
        format!("About your company's {site_name} subscription")
    }
}
