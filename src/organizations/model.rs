use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::access::EntitlementId;
use crate::accounts::AccountId;
use crate::platform::db::schema::{
    organization_domains, organization_join_tokens, organization_managers, organization_members,
    organizations,
};
use crate::platform::domain::TokenHash;

crate::id_type!(OrganizationId);
crate::id_type!(MemberId);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub seat_count: i32,
    pub seats_used: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub notes: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Organization {
    /// Whether its subscription runs at `now`.
    pub fn is_active(&self, now: NaiveDateTime) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn has_free_seat(&self) -> bool {
        self.seats_used < self.seat_count
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations, treat_none_as_default_value = false)]
pub struct NewOrganization<'a> {
    pub id: OrganizationId,
    pub name: &'a str,
    pub seat_count: i32,
    pub seats_used: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub notes: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organization_domains, treat_none_as_default_value = false)]
pub struct NewDomain<'a> {
    pub domain: &'a str,
    pub organization_id: OrganizationId,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organization_members)]
pub struct Member {
    pub id: MemberId,
    pub organization_id: OrganizationId,
    pub account_id: AccountId,
    pub entitlement_id: Option<EntitlementId>,
    pub joined_at: NaiveDateTime,
    pub removed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organization_members, treat_none_as_default_value = false)]
pub struct NewMember {
    pub id: MemberId,
    pub organization_id: OrganizationId,
    pub account_id: AccountId,
    pub entitlement_id: Option<EntitlementId>,
    pub joined_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organization_managers, treat_none_as_default_value = false)]
pub struct NewManager {
    pub organization_id: OrganizationId,
    pub account_id: AccountId,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organization_join_tokens, treat_none_as_default_value = false)]
pub struct NewJoinToken<'a> {
    pub token_hash: &'a TokenHash,
    pub organization_id: OrganizationId,
    pub email: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organization_join_tokens)]
pub struct JoinToken {
    pub token_hash: TokenHash,
    pub organization_id: OrganizationId,
    pub email: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}
