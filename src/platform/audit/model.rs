use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::platform::db::schema::audit_log;
use crate::platform::domain::AccountId;

crate::id_type!(AuditId);

crate::text_enum! {
    /// What kind of thing an action was done to.
    pub enum SubjectKind {
        Trial => "trial",
        Account => "account",
        Entitlement => "entitlement",
        Article => "article",
        Section => "section",
        Subscriber => "subscriber",
        Suppression => "suppression",
        DigestRun => "digest_run",
        Inquiry => "inquiry",
        Organization => "organization",
    }
}

/// The thing an action was done to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: String,
}

impl Subject {
    pub fn new(kind: SubjectKind, id: impl ToString) -> Self {
        Self {
            kind,
            id: id.to_string(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: NaiveDateTime,
    pub actor_id: Option<AccountId>,
    /// What was done, as `area.verb` (`trial.approve`, `article.publish`).
    pub action: String,
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    /// A note in words, or the values that changed.
    pub detail: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct NewAuditEntry<'a> {
    pub id: AuditId,
    pub at: NaiveDateTime,
    pub actor_id: Option<AccountId>,
    pub action: &'a str,
    pub subject_kind: SubjectKind,
    pub subject_id: &'a str,
    pub detail: Option<&'a str>,
}
