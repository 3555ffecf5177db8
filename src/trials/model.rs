use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::access::EntitlementId;
use crate::accounts::AccountId;
use crate::platform::db::schema::{trial_decisions, trial_requests};

crate::id_type!(TrialId);
crate::id_type!(DecisionId);

crate::text_enum! {
    pub enum TrialStatus {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
    }
}

crate::text_enum! {
    pub enum DecisionAction {
        Approve => "approve",
        Reject => "reject",
        Undo => "undo",
        // An approved trial cut short: its access ends at once.
        End => "end",
    }
}

crate::text_enum! {
    /// What an admin should look at before deciding. Flags inform; they
    /// never reject on their own.
    pub enum RiskFlag {
        FreeMailDomain => "free_mail_domain",
        DisposableDomain => "disposable_domain",
        CompanyDomainMismatch => "company_domain_mismatch",
        SameCompanyRecently => "same_company_recently",
        NewAccount => "new_account",
        SameIpRecently => "same_ip_recently",
        PreviouslyRejected => "previously_rejected",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = trial_requests)]
pub struct TrialRequest {
    pub id: TrialId,
    pub account_id: AccountId,
    pub company: String,
    pub job_title: String,
    pub reason: Option<String>,
    pub email_domain: String,
    pub client_ip: Option<String>,
    pub status: TrialStatus,
    pub flags: String,
    pub requested_at: NaiveDateTime,
    pub decision_due_by: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub decided_by: Option<AccountId>,
    pub decision_note: Option<String>,
    pub decision_id: Option<DecisionId>,
    pub entitlement_id: Option<EntitlementId>,
}

impl TrialRequest {
    /// The stored flags; an unreadable list reads as none.
    pub fn flags(&self) -> Vec<RiskFlag> {
        serde_json::from_str(&self.flags).unwrap_or_default()
    }

    pub fn is_overdue(&self, now: NaiveDateTime) -> bool {
        self.status == TrialStatus::Pending && now > self.decision_due_by
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = trial_requests, treat_none_as_default_value = false)]
pub struct NewTrialRequest<'a> {
    pub id: TrialId,
    pub account_id: AccountId,
    pub company: &'a str,
    pub job_title: &'a str,
    pub reason: Option<&'a str>,
    pub email_domain: &'a str,
    pub client_ip: Option<&'a str>,
    pub status: TrialStatus,
    pub flags: &'a str,
    pub requested_at: NaiveDateTime,
    pub decision_due_by: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = trial_decisions, treat_none_as_default_value = false)]
pub struct NewDecision<'a> {
    pub id: DecisionId,
    pub trial_id: TrialId,
    pub admin_id: Option<AccountId>,
    pub action: DecisionAction,
    pub note: Option<&'a str>,
    pub decided_at: NaiveDateTime,
}

/// One step of a request's history, in the order taken.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = trial_decisions)]
pub struct Decision {
    pub id: DecisionId,
    pub admin_id: Option<AccountId>,
    pub action: DecisionAction,
    pub note: Option<String>,
    pub decided_at: NaiveDateTime,
}
