//! What another capability or flow may do to trials inside its own
//! transaction: end a trial whose access was revoked, close a waiting
//! request when its reader joins a company. Each takes that transaction's
//! connection.

use chrono::{DateTime, Utc};
use diesel::QueryResult;

use super::model::{DecisionAction, DecisionId, NewDecision, TrialId, TrialStatus};
use super::store::{self, Outcome};
use crate::access::{Entitlement, EntitlementKind};
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::db::DbConnection;
use crate::platform::domain::AccountId;

/// A trial's right to read was revoked from the account's side (not from
/// the queue), in the caller's transaction: the trial ends as if ended
/// early, so its reader gets no reminder and no end-of-trial email for a
/// trial they no longer have. Any other right is none of the trials' business.
pub fn access_revoked(
    conn: &mut DbConnection,
    entitlement: &Entitlement,
    actor: Option<AccountId>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let trial_id = match (entitlement.kind, entitlement.source_id.as_deref()) {
        (EntitlementKind::Trial, Some(source)) => source.parse::<TrialId>().ok(),
        _ => None,
    };
    let Some(trial) = trial_id
        .map(|id| store::find(conn, id))
        .transpose()?
        .flatten()
    else {
        return Ok(());
    };
    // Revoked just now: it was running unless its end date had passed,
    // when its emails have gone and the trial ended on its own.
    let was_running = entitlement.ends_at.is_none_or(|end| end > now.naive_utc());
    if trial.entitlement_id == Some(entitlement.id) && was_running {
        let withdrawn =
            super::service::record_end(conn, &trial, actor, None, "its access was revoked", now)?;
        tracing::info!(trial_id = %trial.id, emails_withdrawn = withdrawn, "trial ended by a revocation");
    }
    Ok(())
}

/// Closes the reader's waiting trial request when they take a company
/// seat (in the join transaction): the seat gives them what the trial
/// would. Recorded as rejected, as the request model has no other closed
/// state, with a note saying why and no email (the reader just joined).
/// Returns whether a request was waiting.
pub fn close_pending_on_join(
    conn: &mut DbConnection,
    reader: AccountId,
    organization: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let Some(pending) = store::of_account(conn, reader)?
        .into_iter()
        .find(|t| t.status == TrialStatus::Pending)
    else {
        return Ok(false);
    };
    let note = format!("Closed: the reader joined {organization}'s company subscription");
    let decision = DecisionId::new();
    store::insert_decision(
        conn,
        &NewDecision {
            id: decision,
            trial_id: pending.id,
            admin_id: None,
            action: DecisionAction::Reject,
            note: Some(&note),
            decided_at: now.naive_utc(),
        },
    )?;
    let closed = store::decide(
        conn,
        pending.id,
        &Outcome {
            status: TrialStatus::Rejected,
            admin: reader,
            note: Some(&note),
            decision,
            entitlement: None,
        },
        now.naive_utc(),
    )?;
    audit::record(
        conn,
        now,
        Some(reader),
        "trial.close_on_join",
        &Subject::new(SubjectKind::Trial, pending.id),
        Some(&note),
    )?;
    Ok(closed)
}
