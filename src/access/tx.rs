//! What another capability or flow may do to entitlements inside its own
//! transaction: the trials grant and end their own, the organisations keep
//! their seats in step, and a revocation is recorded for everyone's sake.
//! Each takes that transaction's connection.

use chrono::{DateTime, Utc};
use diesel::QueryResult;

use super::model::{Entitlement, EntitlementId, EntitlementKind, NewEntitlement};
use super::service::AccessError;
use super::store;
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::db::DbConnection;
use crate::platform::domain::AccountId;

pub use super::store::{end_now, find, insert, revoke};

/// Ends an entitlement now, for an admin; recorded as `entitlement.revoke`.
/// Returns it, and whether this call revoked it (`false`: it already was).
pub fn revoke_by_admin(
    conn: &mut DbConnection,
    id: EntitlementId,
    admin: AccountId,
    now: DateTime<Utc>,
) -> Result<(Entitlement, bool), AccessError> {
    let revoked_now = store::revoke(conn, id, now.naive_utc())?;
    let entitlement = store::find(conn, id)?.ok_or(AccessError::NoSuchEntitlement)?;
    if revoked_now {
        let detail = format!("{} of account {}", entitlement.kind, entitlement.account_id);
        let subject = Subject::new(SubjectKind::Entitlement, id);
        audit::record(
            conn,
            now,
            Some(admin),
            "entitlement.revoke",
            &subject,
            Some(&detail),
        )?;
        tracing::info!("entitlement revoked");
    }
    Ok((entitlement, revoked_now))
}

/// The right to read that a company seat gives: it runs with the
/// organisation's subscription period, so `decide` needs no other source,
/// and carries the organisation's name as its note. Called in the join
/// transaction of `organizations`.
pub fn grant_company_seat(
    conn: &mut DbConnection,
    account: AccountId,
    organization_id: &str,
    organization_name: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> QueryResult<EntitlementId> {
    let id = EntitlementId::new();
    store::insert(
        conn,
        &NewEntitlement {
            id,
            account_id: account,
            kind: EntitlementKind::CompanySeat,
            starts_at: period.0.naive_utc(),
            ends_at: Some(period.1.naive_utc()),
            source_id: Some(organization_id),
            granted_by: None,
            note: Some(organization_name),
            created_at: now.naive_utc(),
        },
    )?;
    Ok(id)
}

/// Keeps the seats of an organisation in step with its period and name.
pub fn set_company_period(
    conn: &mut DbConnection,
    organization_id: &str,
    organization_name: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> QueryResult<usize> {
    store::set_period_of_source(
        conn,
        EntitlementKind::CompanySeat,
        organization_id,
        period.0.naive_utc(),
        period.1.naive_utc(),
        organization_name,
    )
}
