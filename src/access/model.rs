use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::accounts::AccountId;
use crate::platform::db::schema::entitlements;

crate::id_type!(EntitlementId);

crate::text_enum! {
    /// Where a right to read comes from.
    pub enum EntitlementKind {
        Trial => "trial",
        CompanySeat => "company_seat",
        Grant => "grant",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = entitlements)]
pub struct Entitlement {
    pub id: EntitlementId,
    pub account_id: AccountId,
    pub kind: EntitlementKind,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub source_id: Option<String>,
    pub granted_by: Option<AccountId>,
    pub note: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl Entitlement {
    pub fn is_active(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none()
            && self.starts_at <= now
            && self.ends_at.is_none_or(|end| end > now)
    }

    pub fn state(&self, now: NaiveDateTime) -> EntitlementState {
        if self.revoked_at.is_some() {
            EntitlementState::Revoked
        } else if self.starts_at > now {
            EntitlementState::Upcoming
        } else if self.is_active(now) {
            EntitlementState::Active
        } else {
            EntitlementState::Ended
        }
    }

    pub fn has_ended(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.ends_at.is_some_and(|end| end <= now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementState {
    Upcoming,
    Active,
    Ended,
    Revoked,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = entitlements, treat_none_as_default_value = false)]
pub struct NewEntitlement<'a> {
    pub id: EntitlementId,
    pub account_id: AccountId,
    pub kind: EntitlementKind,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub source_id: Option<&'a str>,
    pub granted_by: Option<AccountId>,
    pub note: Option<&'a str>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Full,
    Teaser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Editors and admins read everything.
    Staff,
    Trial,
    CompanySeat,
    Subscription,
    NotLoggedIn,
    NoSubscription,
    TrialEnded,
    SubscriptionEnded,
    /// The company whose seat the reader held no longer subscribes.
    CompanySubscriptionEnded,
}

/// The answer, with the end of the right that grants it, if it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub level: Level,
    pub reason: Reason,
    pub until: Option<DateTime<Utc>>,
}

impl Decision {
    pub fn teaser(reason: Reason) -> Self {
        Self {
            level: Level::Teaser,
            reason,
            until: None,
        }
    }
}
