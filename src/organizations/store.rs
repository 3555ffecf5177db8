//! Organisation queries. A seat is taken and given back here by single
//! conditional statements, so that the database decides races.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{
    JoinToken, Member, MemberId, NewDomain, NewJoinToken, NewManager, NewMember, NewOrganization,
    Organization, OrganizationId,
};
use crate::accounts::AccountId;
use crate::platform::db::schema::{
    organization_domains, organization_join_tokens, organization_managers, organization_members,
    organizations,
};
use crate::platform::db::DbConnection;
use crate::platform::domain::TokenHash;

pub fn insert(conn: &mut DbConnection, organization: &NewOrganization<'_>) -> QueryResult<()> {
    diesel::insert_into(organizations::table)
        .values(organization)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: OrganizationId) -> QueryResult<Option<Organization>> {
    organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .optional()
}

/// Every organisation, by name.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Organization>> {
    organizations::table
        .order((organizations::name.asc(), organizations::id.asc()))
        .select(Organization::as_select())
        .load(conn)
}

/// The organisation an email domain belongs to, if any.
pub fn by_domain(conn: &mut DbConnection, domain: &str) -> QueryResult<Option<Organization>> {
    organization_domains::table
        .inner_join(organizations::table)
        .filter(organization_domains::domain.eq(domain))
        .select(Organization::as_select())
        .first(conn)
        .optional()
}

pub fn domains_of(conn: &mut DbConnection, id: OrganizationId) -> QueryResult<Vec<String>> {
    organization_domains::table
        .filter(organization_domains::organization_id.eq(id))
        .order(organization_domains::domain.asc())
        .select(organization_domains::domain)
        .load(conn)
}

pub fn insert_domain(conn: &mut DbConnection, domain: &NewDomain<'_>) -> QueryResult<()> {
    diesel::insert_into(organization_domains::table)
        .values(domain)
        .execute(conn)
        .map(drop)
}

/// Removes a domain of the organisation; returns whether it had it.
pub fn delete_domain(
    conn: &mut DbConnection,
    id: OrganizationId,
    domain: &str,
) -> QueryResult<bool> {
    diesel::delete(
        organization_domains::table
            .filter(organization_domains::organization_id.eq(id))
            .filter(organization_domains::domain.eq(domain)),
    )
    .execute(conn)
    .map(|n| n == 1)
}

/// Sets name, period and notes, and the seat count unless fewer than the
/// seats in use: one statement, so a seat taken meanwhile is counted.
/// Returns whether the row was updated (false: the seat count is too low).
#[allow(clippy::too_many_arguments)]
pub fn update(
    conn: &mut DbConnection,
    id: OrganizationId,
    name: &str,
    seat_count: i32,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    notes: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        organizations::table
            .find(id)
            .filter(organizations::seats_used.le(seat_count)),
    )
    .set((
        organizations::name.eq(name),
        organizations::seat_count.eq(seat_count),
        organizations::starts_at.eq(starts_at),
        organizations::ends_at.eq(ends_at),
        organizations::notes.eq(notes),
        organizations::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Takes a seat if one is free and the subscription runs at `now`: one
/// conditional UPDATE, so of two readers racing for the last seat the
/// database lets exactly one through. Returns whether a seat was taken.
pub fn take_seat(
    conn: &mut DbConnection,
    id: OrganizationId,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        organizations::table
            .find(id)
            .filter(organizations::seats_used.lt(organizations::seat_count))
            .filter(organizations::starts_at.le(now))
            .filter(organizations::ends_at.gt(now)),
    )
    .set(organizations::seats_used.eq(organizations::seats_used + 1))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn free_seat(conn: &mut DbConnection, id: OrganizationId) -> QueryResult<()> {
    diesel::update(
        organizations::table
            .find(id)
            .filter(organizations::seats_used.gt(0)),
    )
    .set(organizations::seats_used.eq(organizations::seats_used - 1))
    .execute(conn)
    .map(drop)
}

pub fn insert_member(conn: &mut DbConnection, member: &NewMember) -> QueryResult<()> {
    diesel::insert_into(organization_members::table)
        .values(member)
        .execute(conn)
        .map(drop)
}

/// The members holding a seat now, earliest first.
pub fn members_of(conn: &mut DbConnection, id: OrganizationId) -> QueryResult<Vec<Member>> {
    organization_members::table
        .filter(organization_members::organization_id.eq(id))
        .filter(organization_members::removed_at.is_null())
        .order((
            organization_members::joined_at.asc(),
            organization_members::id.asc(),
        ))
        .select(Member::as_select())
        .load(conn)
}

pub fn find_member(conn: &mut DbConnection, id: MemberId) -> QueryResult<Option<Member>> {
    organization_members::table
        .find(id)
        .select(Member::as_select())
        .first(conn)
        .optional()
}

/// The seat an account holds now, if any.
pub fn seat_of(conn: &mut DbConnection, account: AccountId) -> QueryResult<Option<Member>> {
    organization_members::table
        .filter(organization_members::account_id.eq(account))
        .filter(organization_members::removed_at.is_null())
        .select(Member::as_select())
        .first(conn)
        .optional()
}

/// Ends a membership that is current; returns whether it was.
pub fn remove_member(
    conn: &mut DbConnection,
    id: MemberId,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        organization_members::table
            .find(id)
            .filter(organization_members::removed_at.is_null()),
    )
    .set(organization_members::removed_at.eq(Some(now)))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn insert_manager(conn: &mut DbConnection, manager: &NewManager) -> QueryResult<()> {
    diesel::insert_into(organization_managers::table)
        .values(manager)
        .execute(conn)
        .map(drop)
}

pub fn delete_manager(
    conn: &mut DbConnection,
    id: OrganizationId,
    account: AccountId,
) -> QueryResult<bool> {
    diesel::delete(
        organization_managers::table
            .filter(organization_managers::organization_id.eq(id))
            .filter(organization_managers::account_id.eq(account)),
    )
    .execute(conn)
    .map(|n| n == 1)
}

pub fn managers_of(conn: &mut DbConnection, id: OrganizationId) -> QueryResult<Vec<AccountId>> {
    organization_managers::table
        .filter(organization_managers::organization_id.eq(id))
        .select(organization_managers::account_id)
        .load(conn)
}

/// The organisations an account manages.
pub fn managed_by(conn: &mut DbConnection, account: AccountId) -> QueryResult<Vec<OrganizationId>> {
    organization_managers::table
        .filter(organization_managers::account_id.eq(account))
        .select(organization_managers::organization_id)
        .load(conn)
}

pub fn insert_join_token(conn: &mut DbConnection, token: &NewJoinToken<'_>) -> QueryResult<()> {
    diesel::insert_into(organization_join_tokens::table)
        .values(token)
        .execute(conn)
        .map(drop)
}

/// A join link that may still be spent: unused and unexpired.
pub fn live_join_token(
    conn: &mut DbConnection,
    hash: &TokenHash,
    now: NaiveDateTime,
) -> QueryResult<Option<JoinToken>> {
    organization_join_tokens::table
        .find(hash.clone())
        .filter(organization_join_tokens::used_at.is_null())
        .filter(organization_join_tokens::expires_at.gt(now))
        .select(JoinToken::as_select())
        .first(conn)
        .optional()
}

/// Spends a join link: succeeds once, before it expires.
pub fn spend_join_token(
    conn: &mut DbConnection,
    hash: &TokenHash,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        organization_join_tokens::table
            .find(hash.clone())
            .filter(organization_join_tokens::used_at.is_null())
            .filter(organization_join_tokens::expires_at.gt(now)),
    )
    .set(organization_join_tokens::used_at.eq(Some(now)))
    .execute(conn)
    .map(|n| n == 1)
}
