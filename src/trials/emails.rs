//! The messages of a trial's life, one type each.

use serde::Serialize;

use crate::platform::mail::Email;

#[derive(Debug, Serialize)]
pub struct TrialReceived {
    pub name: String,
    pub company: String,
    pub due_by: String,
    pub newsletter_link: String,
}

impl Email for TrialReceived {
    const TEMPLATE: &'static str = "trial_received";

    fn subject(&self, site_name: &str) -> String {
        format!("We have your {site_name} trial request")
    }
}

#[derive(Debug, Serialize)]
pub struct TrialApproved {
    pub name: String,
    pub ends_on: String,
    pub read_link: String,
}

impl Email for TrialApproved {
    const TEMPLATE: &'static str = "trial_approved";

    fn subject(&self, site_name: &str) -> String {
        format!("Your {site_name} trial has started")
    }
}

#[derive(Debug, Serialize)]
pub struct TrialRejected {
    pub name: String,
    pub reason: String,
    pub newsletter_link: String,
    pub contact_sales_link: String,
}

impl Email for TrialRejected {
    const TEMPLATE: &'static str = "trial_rejected";

    fn subject(&self, site_name: &str) -> String {
        format!("Your {site_name} trial request")
    }
}

#[derive(Debug, Serialize)]
pub struct TrialReminder {
    pub name: String,
    pub ends_on: String,
    pub days_left: i64,
    pub company_access_link: String,
    pub contact_sales_link: String,
}

impl Email for TrialReminder {
    const TEMPLATE: &'static str = "trial_reminder";

    fn subject(&self, site_name: &str) -> String {
        format!("Your {site_name} trial ends in {} days", self.days_left)
    }
}

#[derive(Debug, Serialize)]
pub struct TrialEnded {
    pub name: String,
    pub company_access_link: String,
    pub contact_sales_link: String,
    pub newsletter_link: String,
}

impl Email for TrialEnded {
    const TEMPLATE: &'static str = "trial_ended";

    fn subject(&self, site_name: &str) -> String {
        format!("Your {site_name} trial has ended")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OverdueItem {
    pub name: String,
    pub company: String,
    pub hours: i64,
}

#[derive(Debug, Serialize)]
pub struct AdminTrialSummary {
    pub name: String,
    pub pending: usize,
    pub oldest_hours: i64,
    pub promise_hours: i64,
    pub overdue: Vec<OverdueItem>,
    pub queue_link: String,
}

impl Email for AdminTrialSummary {
    const TEMPLATE: &'static str = "admin_trial_summary";

    fn subject(&self, _site_name: &str) -> String {
        if self.overdue.is_empty() {
            format!("Trial queue: {} waiting", self.pending)
        } else {
            format!(
                "Trial queue: {} waiting, {} past the {}-hour promise",
                self.pending,
                self.overdue.len(),
                self.promise_hours
            )
        }
    }
}
