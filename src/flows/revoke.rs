//! An admin revokes a right to read: the entitlement ends and is audited,
//! and when it was a trial's, the trial ends with it, withdrawing the mail
//! its approval scheduled, in one transaction.

use crate::access::tx as access;
use crate::access::{AccessError, Entitlement, EntitlementId};
use crate::accounts::service::require;
use crate::accounts::{Account, Role};
use crate::platform::clock::SharedClock;
use crate::platform::db::{self, Pool};
use crate::trials::tx as trials;

/// Returns the entitlement, and whether this call revoked it (`false`: it
/// already was).
#[tracing::instrument(skip_all, fields(admin = %admin.id, entitlement_id = %id))]
pub async fn revoke_entitlement(
    pool: &Pool,
    clock: &SharedClock,
    admin: &Account,
    id: EntitlementId,
) -> Result<(Entitlement, bool), AccessError> {
    require(admin, Role::Admin)?;
    let now = clock.now();
    let admin_id = admin.id;
    db::run(pool, move |conn| {
        db::transaction(conn, |conn| {
            let (entitlement, revoked_now) = access::revoke_by_admin(conn, id, admin_id, now)?;
            if revoked_now {
                trials::access_revoked(conn, &entitlement, Some(admin_id), now)?;
            }
            Ok::<_, AccessError>((entitlement, revoked_now))
        })
    })
    .await
}
