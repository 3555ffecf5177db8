//! What another capability or flow may read or do to organisations inside
//! its own transaction. Each takes that transaction's connection.

use chrono::{DateTime, Utc};
use diesel::QueryResult;

use super::model::{MemberId, Organization};
use super::service::{take_seat, OrganizationError};
use super::store;
use crate::platform::db::DbConnection;
use crate::platform::domain::{AccountId, EmailAddress, Token};

/// Whether the domain belongs to an organisation subscribing at `now` with
/// a seat to spare: the trial rule "join your company instead".
pub fn has_free_seat_for(
    conn: &mut DbConnection,
    domain: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    Ok(store::by_domain(conn, &domain.to_ascii_lowercase())?
        .is_some_and(|o| o.is_active(now.naive_utc()) && o.has_free_seat()))
}

/// Spends a join link for the reader it was sent to and gives them the
/// seat it offers; the organisation and the new membership.
pub fn join_by_link(
    conn: &mut DbConnection,
    reader: AccountId,
    email: &EmailAddress,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<(Organization, MemberId), OrganizationError> {
    let link = store::live_join_token(conn, &token.hash(), now.naive_utc())?
        .ok_or(OrganizationError::InvalidLink)?;
    if !link.email.eq_ignore_ascii_case(email.as_str()) {
        return Err(OrganizationError::WrongAddress);
    }
    if store::seat_of(conn, reader)?.is_some() {
        return Err(OrganizationError::AlreadyMember);
    }
    if !store::spend_join_token(conn, &token.hash(), now.naive_utc())? {
        return Err(OrganizationError::InvalidLink);
    }
    let organization =
        store::find(conn, link.organization_id)?.ok_or(OrganizationError::InvalidLink)?;
    let member = take_seat(conn, &organization, reader, now)?;
    Ok((organization, member))
}
