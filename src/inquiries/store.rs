//! Inquiry queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{Handling, Inquiry, InquiryId, NewInquiry};
use crate::platform::db::schema::inquiries;
use crate::platform::db::DbConnection;
use crate::platform::domain::EmailAddress;

pub fn insert(conn: &mut DbConnection, inquiry: &NewInquiry<'_>) -> QueryResult<()> {
    diesel::insert_into(inquiries::table)
        .values(inquiry)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: InquiryId) -> QueryResult<Option<Inquiry>> {
    inquiries::table
        .find(id)
        .select(Inquiry::as_select())
        .first(conn)
        .optional()
}

/// Whether `email` was sent an acknowledgement at or after `since`.
pub fn acknowledged_since(
    conn: &mut DbConnection,
    email: &EmailAddress,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        inquiries::table
            .filter(inquiries::email.eq(email))
            .filter(inquiries::acknowledged.eq(true))
            .filter(inquiries::received_at.ge(since)),
    ))
    .get_result(conn)
}

/// Inquiries newest first, all of them or those with this handled flag.
pub fn list(
    conn: &mut DbConnection,
    handled: Option<bool>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Inquiry>, i64)> {
    let filtered = || {
        let mut query = inquiries::table.into_boxed();
        if let Some(handled) = handled {
            query = query.filter(inquiries::handled.eq(handled));
        }
        query
    };
    let page = filtered()
        .order((inquiries::received_at.desc(), inquiries::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Inquiry::as_select())
        .load(conn)?;
    let total = filtered().count().get_result(conn)?;
    Ok((page, total))
}

/// Writes an admin's handling; false when there is no such inquiry.
pub fn handle(
    conn: &mut DbConnection,
    id: InquiryId,
    handling: &Handling<'_>,
) -> QueryResult<bool> {
    diesel::update(inquiries::table.find(id))
        .set(handling)
        .execute(conn)
        .map(|n| n == 1)
}
