//! Trial request and decision queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{
    Decision, DecisionId, NewDecision, NewTrialRequest, TrialId, TrialRequest, TrialStatus,
};
use crate::access::EntitlementId;
use crate::accounts::Account;
use crate::accounts::AccountId;
use crate::platform::db::schema::{accounts, admin_summaries, trial_decisions, trial_requests};
use crate::platform::db::DbConnection;

pub fn insert(conn: &mut DbConnection, request: &NewTrialRequest<'_>) -> QueryResult<()> {
    diesel::insert_into(trial_requests::table)
        .values(request)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: TrialId) -> QueryResult<Option<TrialRequest>> {
    trial_requests::table
        .find(id)
        .select(TrialRequest::as_select())
        .first(conn)
        .optional()
}

/// The account's requests, newest first.
pub fn of_account(conn: &mut DbConnection, account: AccountId) -> QueryResult<Vec<TrialRequest>> {
    trial_requests::table
        .filter(trial_requests::account_id.eq(account))
        .order(trial_requests::requested_at.desc())
        .select(TrialRequest::as_select())
        .load(conn)
}

/// Requests since `since` from the same mail domain, other than `account`'s.
pub fn count_same_domain_since(
    conn: &mut DbConnection,
    domain: &str,
    account: AccountId,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    trial_requests::table
        .filter(trial_requests::email_domain.eq(domain))
        .filter(trial_requests::account_id.ne(account))
        .filter(trial_requests::requested_at.ge(since))
        .count()
        .get_result(conn)
}

/// Requests since `since` naming a company, compared case-insensitively.
pub fn count_same_company_since(
    conn: &mut DbConnection,
    company: &str,
    account: AccountId,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    trial_requests::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("LOWER(company) = ")
                .bind::<diesel::sql_types::Text, _>(company.to_lowercase()),
        )
        .filter(trial_requests::account_id.ne(account))
        .filter(trial_requests::requested_at.ge(since))
        .count()
        .get_result(conn)
}

pub fn count_same_ip_since(
    conn: &mut DbConnection,
    ip: &str,
    account: AccountId,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    trial_requests::table
        .filter(trial_requests::client_ip.eq(ip))
        .filter(trial_requests::account_id.ne(account))
        .filter(trial_requests::requested_at.ge(since))
        .count()
        .get_result(conn)
}

/// Every request in `statuses` with its account, oldest first.
pub fn queue(
    conn: &mut DbConnection,
    statuses: &[TrialStatus],
) -> QueryResult<Vec<(TrialRequest, Account)>> {
    trial_requests::table
        .inner_join(accounts::table)
        .filter(trial_requests::status.eq_any(statuses))
        .order((trial_requests::requested_at.asc(), trial_requests::id.asc()))
        .select((TrialRequest::as_select(), Account::as_select()))
        .load(conn)
}

/// One request with the account that made it.
pub fn find_with_account(
    conn: &mut DbConnection,
    id: TrialId,
) -> QueryResult<Option<(TrialRequest, Account)>> {
    trial_requests::table
        .inner_join(accounts::table)
        .filter(trial_requests::id.eq(id))
        .select((TrialRequest::as_select(), Account::as_select()))
        .first(conn)
        .optional()
}

pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(TrialStatus, i64)>> {
    trial_requests::table
        .group_by(trial_requests::status)
        .select((trial_requests::status, diesel::dsl::count_star()))
        .load(conn)
}

/// Pending requests past their promised decision time (as
/// `TrialRequest::is_overdue`).
pub fn count_overdue(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<i64> {
    trial_requests::table
        .filter(trial_requests::status.eq(TrialStatus::Pending))
        .filter(trial_requests::decision_due_by.lt(now))
        .count()
        .get_result(conn)
}

/// Hours from request to decision of every decided request.
pub fn decision_times(conn: &mut DbConnection) -> QueryResult<Vec<(NaiveDateTime, NaiveDateTime)>> {
    let rows: Vec<(NaiveDateTime, Option<NaiveDateTime>)> = trial_requests::table
        .filter(trial_requests::decided_at.is_not_null())
        .select((trial_requests::requested_at, trial_requests::decided_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(requested, decided)| decided.map(|d| (requested, d)))
        .collect())
}

/// What a decision writes onto its request.
pub struct Outcome<'a> {
    pub status: TrialStatus,
    pub admin: AccountId,
    pub note: Option<&'a str>,
    pub decision: DecisionId,
    pub entitlement: Option<EntitlementId>,
}

/// Records a decision on a request that is still pending. Returns false when
/// it is not (someone else decided first).
pub fn decide(
    conn: &mut DbConnection,
    id: TrialId,
    outcome: &Outcome<'_>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        trial_requests::table
            .find(id)
            .filter(trial_requests::status.eq(TrialStatus::Pending)),
    )
    .set((
        trial_requests::status.eq(outcome.status),
        trial_requests::decided_at.eq(Some(now)),
        trial_requests::decided_by.eq(Some(outcome.admin)),
        trial_requests::decision_note.eq(outcome.note),
        trial_requests::decision_id.eq(Some(outcome.decision)),
        trial_requests::entitlement_id.eq(outcome.entitlement),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Puts a decided request back in the queue, if it is still the decision
/// `decision` that stands.
pub fn reopen(conn: &mut DbConnection, id: TrialId, decision: DecisionId) -> QueryResult<bool> {
    diesel::update(
        trial_requests::table
            .find(id)
            .filter(trial_requests::decision_id.eq(decision)),
    )
    .set((
        trial_requests::status.eq(TrialStatus::Pending),
        trial_requests::decided_at.eq(None::<NaiveDateTime>),
        trial_requests::decided_by.eq(None::<AccountId>),
        trial_requests::decision_note.eq(None::<String>),
        trial_requests::decision_id.eq(None::<DecisionId>),
        trial_requests::entitlement_id.eq(None::<EntitlementId>),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn insert_decision(conn: &mut DbConnection, decision: &NewDecision<'_>) -> QueryResult<()> {
    diesel::insert_into(trial_decisions::table)
        .values(decision)
        .execute(conn)
        .map(drop)
}

pub fn decisions_of(conn: &mut DbConnection, id: TrialId) -> QueryResult<Vec<Decision>> {
    trial_decisions::table
        .filter(trial_decisions::trial_id.eq(id))
        .order(trial_decisions::decided_at.asc())
        .select(Decision::as_select())
        .load(conn)
}

/// A request's history, oldest first, with the name of whoever took each
/// step (none once their account is gone).
pub fn history(
    conn: &mut DbConnection,
    id: TrialId,
) -> QueryResult<Vec<(Decision, Option<String>)>> {
    trial_decisions::table
        .left_join(accounts::table.on(trial_decisions::admin_id.eq(accounts::id.nullable())))
        .filter(trial_decisions::trial_id.eq(id))
        .order((trial_decisions::decided_at.asc(), trial_decisions::id.asc()))
        .select((Decision::as_select(), accounts::name.nullable()))
        .load(conn)
}

/// The names of the given accounts (of those that still exist).
pub fn names_of(
    conn: &mut DbConnection,
    ids: &[AccountId],
) -> QueryResult<Vec<(AccountId, String)>> {
    accounts::table
        .filter(accounts::id.eq_any(ids))
        .select((accounts::id, accounts::name))
        .load(conn)
}

/// Claims the morning summary of `date`; false when it was already sent.
pub fn claim_summary(conn: &mut DbConnection, date: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let inserted = crate::per_backend!(conn, |c| diesel::insert_into(admin_summaries::table)
        .values((
            admin_summaries::summary_date.eq(date),
            admin_summaries::created_at.eq(now),
        ))
        .on_conflict(admin_summaries::summary_date)
        .do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}
