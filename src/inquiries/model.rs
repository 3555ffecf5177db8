use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::accounts::AccountId;
use crate::platform::db::schema::inquiries;
use crate::platform::domain::EmailAddress;

crate::id_type!(InquiryId);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inquiries)]
pub struct Inquiry {
    pub id: InquiryId,
    pub name: String,
    pub email: EmailAddress,
    pub company: String,
    pub seats: i32,
    pub message: Option<String>,
    /// Whether its sender was sent an acknowledgement (at most one an hour
    /// goes to an address).
    pub acknowledged: bool,
    pub received_at: NaiveDateTime,
    pub handled: bool,
    pub handled_at: Option<NaiveDateTime>,
    pub handled_by: Option<AccountId>,
    pub note: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = inquiries, treat_none_as_default_value = false)]
pub struct NewInquiry<'a> {
    pub id: InquiryId,
    pub name: &'a str,
    pub email: &'a EmailAddress,
    pub company: &'a str,
    pub seats: i32,
    pub message: Option<&'a str>,
    pub acknowledged: bool,
    pub received_at: NaiveDateTime,
}

/// What an admin's handling writes onto an inquiry.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = inquiries, treat_none_as_null = true)]
pub struct Handling<'a> {
    pub handled: bool,
    pub handled_at: Option<NaiveDateTime>,
    pub handled_by: Option<AccountId>,
    pub note: Option<&'a str>,
}
