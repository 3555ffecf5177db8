use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;

use super::model::{
    Decision, Entitlement, EntitlementId, EntitlementKind, Level, NewEntitlement, Reason,
};
use super::store;
use crate::accounts::service::require;
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::db::stamp::Stamped;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{optional_text, FieldError, Fields, Invalid};

/// What a reader who is not logged in may read: the same for every one of
/// them, so it needs no database.
pub fn for_anonymous() -> Decision {
    Decision::teaser(Reason::NotLoggedIn)
}

/// The decision for nobody and for staff, which needs no look at rights;
/// for anyone else, the account whose rights decide.
fn without_rights(reader: Option<&Account>) -> Result<Decision, &Account> {
    match reader {
        None => Ok(for_anonymous()),
        Some(reader) if reader.role.includes(Role::Editor) => Ok(Decision {
            level: Level::Full,
            reason: Reason::Staff,
            until: None,
        }),
        Some(reader) => Err(reader),
    }
}

/// Decides, from the account's role and entitlements at `now`.
pub fn decide(
    conn: &mut DbConnection,
    reader: Option<&Account>,
    now: DateTime<Utc>,
) -> QueryResult<Decision> {
    match without_rights(reader) {
        Ok(decision) => Ok(decision),
        Err(reader) => Ok(decide_from(
            &store::of_account(conn, reader.id)?,
            now.naive_utc(),
        )),
    }
}

/// What each account may read, kept until one of its rights starts or
/// ends, and while the access stamp stands (see `db::stamp`).
pub type KeptDecisions = Stamped<AccountId, KeptDecision>;

#[derive(Clone)]
pub struct KeptDecision {
    decision: Decision,
    until: Option<NaiveDateTime>,
}

pub fn kept_decisions(recheck: std::time::Duration) -> KeptDecisions {
    Stamped::new(recheck, db::stamp::access_stamp)
}

/// [`decide`], without a visit to the database when the decision is kept.
pub async fn decision(
    kept: &KeptDecisions,
    pool: &Pool,
    reader: Option<&Account>,
    now: DateTime<Utc>,
) -> Result<Decision, StorageError> {
    let reader = match without_rights(reader) {
        Ok(decision) => return Ok(decision),
        Err(reader) => reader.id,
    };
    let now = now.naive_utc();
    let ticket = kept.check(pool).await?;
    if let Some(kept) = kept
        .get(&reader)
        .filter(|k| k.until.is_none_or(|t| t > now))
    {
        return Ok(kept.decision);
    }
    let rights = db::run(pool, move |conn| {
        store::of_account(conn, reader).map_err(StorageError::from)
    })
    .await?;
    let decision = decide_from(&rights, now);
    let until = next_change(&rights, now);
    kept.keep(ticket, reader, KeptDecision { decision, until });
    Ok(decision)
}

/// The first moment after `now` at which one of the rights starts or ends.
fn next_change(entitlements: &[Entitlement], now: NaiveDateTime) -> Option<NaiveDateTime> {
    entitlements
        .iter()
        .filter(|e| e.revoked_at.is_none())
        .flat_map(|e| [Some(e.starts_at), e.ends_at])
        .flatten()
        .filter(|&moment| moment > now)
        .min()
}

/// Of several active rights, the one that lasts longest is the reason given.
fn decide_from(entitlements: &[Entitlement], now: NaiveDateTime) -> Decision {
    let best = entitlements
        .iter()
        .filter(|e| e.is_active(now))
        .max_by_key(|e| e.ends_at.unwrap_or(NaiveDateTime::MAX));
    if let Some(best) = best {
        return Decision {
            level: Level::Full,
            reason: match best.kind {
                EntitlementKind::Trial => Reason::Trial,
                EntitlementKind::CompanySeat => Reason::CompanySeat,
                EntitlementKind::Grant => Reason::Subscription,
            },
            until: best.ends_at.map(|end| end.and_utc()),
        };
    }
    let latest_ended = entitlements
        .iter()
        .filter(|e| e.has_ended(now))
        .max_by_key(|e| e.ends_at);
    Decision::teaser(match latest_ended.map(|e| e.kind) {
        Some(EntitlementKind::Trial) => Reason::TrialEnded,
        Some(EntitlementKind::CompanySeat) => Reason::CompanySubscriptionEnded,
        Some(EntitlementKind::Grant) => Reason::SubscriptionEnded,
        None => Reason::NoSubscription,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("no such account")]
    NoSuchAccount,
    #[error("no such entitlement")]
    NoSuchEntitlement,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<diesel::result::Error> for AccessError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// A subscription an admin gives a reader by hand.
pub struct GrantRequest {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

#[derive(Clone)]
pub struct AccessService {
    pool: Pool,
    clock: SharedClock,
}

impl AccessService {
    pub fn new(pool: Pool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }

    /// The reader's own view: the decision now, and every entitlement.
    pub async fn summary(
        &self,
        reader: Account,
    ) -> Result<(Decision, Vec<Entitlement>), AccessError> {
        let now = self.clock.now();
        db::run(&self.pool, move |conn| {
            let decision = decide(conn, Some(&reader), now)?;
            let entitlements = store::of_account(conn, reader.id)?;
            Ok((decision, entitlements))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(admin = %admin.id, account_id = %account))]
    pub async fn grant(
        &self,
        admin: &Account,
        account: AccountId,
        request: GrantRequest,
    ) -> Result<Entitlement, AccessError> {
        require(admin, Role::Admin)?;
        let now = self.clock.now();
        let starts_at = request.starts_at.unwrap_or(now);
        let mut fields = Fields::default();
        let note = fields.take("note", optional_text(request.note.as_deref(), 500));
        if request.ends_at.is_some_and(|end| end <= starts_at) {
            fields.reject(
                "ends_at",
                Invalid::new("before_start", "the end must come after the start"),
            );
        }
        fields.finish().map_err(AccessError::Invalid)?;
        let note = note.flatten();
        let admin_id = admin.id;
        let entitlement = db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                crate::accounts::tx::find(conn, account)?.ok_or(AccessError::NoSuchAccount)?;
                let id = EntitlementId::new();
                store::insert(
                    conn,
                    &NewEntitlement {
                        id,
                        account_id: account,
                        kind: EntitlementKind::Grant,
                        starts_at: starts_at.naive_utc(),
                        ends_at: request.ends_at.map(|end| end.naive_utc()),
                        source_id: None,
                        granted_by: Some(admin_id),
                        note: note.as_ref().map(|n| n.as_str()),
                        created_at: now.naive_utc(),
                    },
                )?;
                let granted = store::find(conn, id)?.ok_or(AccessError::NoSuchEntitlement)?;
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "entitlement.grant",
                    &Subject::new(SubjectKind::Entitlement, id),
                    Some(&grant_detail(&granted)),
                )?;
                Ok::<_, AccessError>(granted)
            })
        })
        .await?;
        tracing::info!(entitlement_id = %entitlement.id, "subscription granted");
        Ok(entitlement)
    }

    pub async fn entitlements_of(
        &self,
        admin: &Account,
        account: AccountId,
    ) -> Result<Vec<Entitlement>, AccessError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, move |conn| {
            crate::accounts::tx::find(conn, account)?.ok_or(AccessError::NoSuchAccount)?;
            Ok(store::of_account(conn, account)?)
        })
        .await
    }
}

/// What the audit trail says about a grant: for how long, why, and whose.
fn grant_detail(granted: &Entitlement) -> String {
    let minute = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut detail = format!("from {}", minute(granted.starts_at));
    match granted.ends_at {
        Some(end) => detail.push_str(&format!(" until {}", minute(end))),
        None => detail.push_str(", no end"),
    }
    if let Some(note) = &granted.note {
        detail.push_str(&format!("; note: {note}"));
    }
    detail.push_str(&format!(" (account {})", granted.account_id));
    detail
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn entitlement(
        kind: EntitlementKind,
        start: i64,
        end: Option<i64>,
        now: NaiveDateTime,
    ) -> Entitlement {
        Entitlement {
            id: EntitlementId::new(),
            account_id: AccountId::new(),
            kind,
            starts_at: now + Duration::days(start),
            ends_at: end.map(|d| now + Duration::days(d)),
            source_id: None,
            granted_by: None,
            note: None,
            revoked_at: None,
            created_at: now,
        }
    }

    #[test]
    fn the_longest_active_right_is_the_reason() {
        let now = Utc::now().naive_utc();
        let trial = entitlement(EntitlementKind::Trial, -1, Some(13), now);
        let grant = entitlement(EntitlementKind::Grant, -1, None, now);
        let decision = decide_from(&[trial.clone(), grant], now);
        assert_eq!(
            (decision.level, decision.reason, decision.until),
            (Level::Full, Reason::Subscription, None)
        );
        let decision = decide_from(&[trial], now);
        assert_eq!(decision.reason, Reason::Trial);
    }

    #[test]
    fn a_company_seat_past_its_period_says_the_company_subscription_ended() {
        let now = Utc::now().naive_utc();
        let seat = entitlement(EntitlementKind::CompanySeat, -30, Some(-1), now);
        assert_eq!(
            decide_from(&[seat], now).reason,
            Reason::CompanySubscriptionEnded
        );
    }

    #[test]
    fn ended_future_and_revoked_rights_give_no_access() {
        let now = Utc::now().naive_utc();
        let ended_trial = entitlement(EntitlementKind::Trial, -20, Some(-6), now);
        assert_eq!(
            decide_from(std::slice::from_ref(&ended_trial), now).reason,
            Reason::TrialEnded
        );
        let future = entitlement(EntitlementKind::Grant, 2, Some(30), now);
        assert_eq!(decide_from(&[future], now).reason, Reason::NoSubscription);
        let mut revoked = entitlement(EntitlementKind::Grant, -2, None, now);
        revoked.revoked_at = Some(now);
        assert_eq!(decide_from(&[revoked], now).reason, Reason::NoSubscription);
        let ended_grant = entitlement(EntitlementKind::Grant, -20, Some(-1), now);
        assert_eq!(
            decide_from(&[ended_trial, ended_grant], now).reason,
            Reason::SubscriptionEnded
        );
    }
}
