//! Account, session and token queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{
    Account, AccountId, NewAccount, NewAccountToken, NewSession, Role, TokenPurpose,
};
use crate::platform::db::schema::{account_tokens, accounts, sessions};
use crate::platform::db::{contains_pattern, DbConnection, MultiBackend};
use crate::platform::domain::{EmailAddress, TokenHash};

pub fn insert(conn: &mut DbConnection, account: &NewAccount<'_>) -> QueryResult<()> {
    diesel::insert_into(accounts::table)
        .values(account)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConnection, id: AccountId) -> QueryResult<Option<Account>> {
    accounts::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_email(
    conn: &mut DbConnection,
    email: &EmailAddress,
) -> QueryResult<Option<Account>> {
    accounts::table
        .filter(accounts::email.eq(email))
        .select(Account::as_select())
        .first(conn)
        .optional()
}

/// The account and its password hash, for checking a login.
pub fn credentials(
    conn: &mut DbConnection,
    email: &EmailAddress,
) -> QueryResult<Option<(Account, String)>> {
    accounts::table
        .filter(accounts::email.eq(email))
        .select((Account::as_select(), accounts::password_hash))
        .first(conn)
        .optional()
}

pub fn set_password_hash(
    conn: &mut DbConnection,
    id: AccountId,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::password_hash.eq(hash),
            accounts::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// Marks the address verified, keeping the first time it was.
pub fn mark_verified(
    conn: &mut DbConnection,
    id: AccountId,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        accounts::table
            .find(id)
            .filter(accounts::email_verified_at.is_null()),
    )
    .set((
        accounts::email_verified_at.eq(Some(now)),
        accounts::updated_at.eq(now),
    ))
    .execute(conn)
    .map(drop)
}

pub fn set_role(
    conn: &mut DbConnection,
    id: AccountId,
    role: Role,
    now: NaiveDateTime,
) -> QueryResult<Option<Account>> {
    let updated = diesel::update(accounts::table.find(id))
        .set((accounts::role.eq(role), accounts::updated_at.eq(now)))
        .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    find(conn, id)
}

/// What a listing of accounts is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Part of the address or of the name, in any case.
    pub search: Option<String>,
    pub role: Option<Role>,
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL's `lower`. SQLite folds only ASCII letters; PostgreSQL folds all.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A page of accounts, newest first (ties broken by id), and the number of
/// matches. Addresses are stored lower-cased; names are compared
/// lower-cased too.
pub fn list(
    conn: &mut DbConnection,
    filter: &AccountFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Account>, i64)> {
    let page = filtered(filter)
        .select(Account::as_select())
        .order((accounts::created_at.desc(), accounts::id.asc()))
        .limit(limit)
        .offset(offset)
        .load(conn)?;
    let total = filtered(filter).count().get_result(conn)?;
    Ok((page, total))
}

fn filtered(filter: &AccountFilter) -> accounts::BoxedQuery<'static, MultiBackend> {
    let mut query = accounts::table.into_boxed();
    if let Some(role) = filter.role {
        query = query.filter(accounts::role.eq(role));
    }
    if let Some(search) = &filter.search {
        let pattern = contains_pattern(&search.to_lowercase());
        query = query.filter(
            accounts::email
                .like(pattern.clone())
                .escape('\\')
                .or(lower(accounts::name).like(pattern).escape('\\')),
        );
    }
    query
}

pub fn insert_token(conn: &mut DbConnection, token: &NewAccountToken<'_>) -> QueryResult<()> {
    diesel::insert_into(account_tokens::table)
        .values(token)
        .execute(conn)
        .map(drop)
}

/// The tokens that may still be spent: unused, unexpired, and for their own
/// purpose only.
#[diesel::dsl::auto_type(no_type_alias)]
fn live_token(hash: TokenHash, purpose: TokenPurpose, now: NaiveDateTime) -> _ {
    account_tokens::table
        .filter(account_tokens::token_hash.eq(hash))
        .filter(account_tokens::purpose.eq(purpose))
        .filter(account_tokens::used_at.is_null())
        .filter(account_tokens::expires_at.gt(now))
}

/// Spends a single-use token: succeeds once, before it expires, for its own
/// purpose only. Returns whose it was.
pub fn spend_token(
    conn: &mut DbConnection,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: NaiveDateTime,
) -> QueryResult<Option<AccountId>> {
    diesel::update(live_token(hash.clone(), purpose, now))
        .set(account_tokens::used_at.eq(Some(now)))
        .returning(account_tokens::account_id)
        .get_result(conn)
        .optional()
}

/// Spends every unspent token of `account` for `purpose`, so that using one
/// link retires the others sent before it. Returns how many were spent.
pub fn spend_tokens_of(
    conn: &mut DbConnection,
    account: AccountId,
    purpose: TokenPurpose,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        account_tokens::table
            .filter(account_tokens::account_id.eq(account))
            .filter(account_tokens::purpose.eq(purpose))
            .filter(account_tokens::used_at.is_null()),
    )
    .set(account_tokens::used_at.eq(Some(now)))
    .execute(conn)
}

/// Whether `spend_token` would succeed now; changes nothing.
pub fn token_is_live(
    conn: &mut DbConnection,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(live_token(hash.clone(), purpose, now))).get_result(conn)
}

pub fn insert_session(conn: &mut DbConnection, session: &NewSession<'_>) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(drop)
}

/// The account of a live session, and when the session expires.
pub fn session_account(
    conn: &mut DbConnection,
    hash: &TokenHash,
    now: NaiveDateTime,
) -> QueryResult<Option<(Account, NaiveDateTime)>> {
    sessions::table
        .inner_join(accounts::table)
        .filter(sessions::token_hash.eq(hash))
        .filter(sessions::expires_at.gt(now))
        .select((Account::as_select(), sessions::expires_at))
        .first(conn)
        .optional()
}

pub fn delete_session(conn: &mut DbConnection, hash: &TokenHash) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(hash)))
        .execute(conn)
        .map(drop)
}

/// Ends the account's sessions, all of them or all but `keep`; returns how
/// many ended.
pub fn delete_sessions_of(
    conn: &mut DbConnection,
    id: AccountId,
    keep: Option<&TokenHash>,
) -> QueryResult<usize> {
    let mut ending = diesel::delete(sessions::table)
        .filter(sessions::account_id.eq(id))
        .into_boxed();
    if let Some(keep) = keep {
        ending = ending.filter(sessions::token_hash.ne(keep));
    }
    ending.execute(conn)
}

/// Deletes sessions and tokens that can no longer be used; returns how many
/// of each.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<(usize, usize)> {
    let sessions =
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?;
    let tokens = diesel::delete(account_tokens::table.filter(account_tokens::expires_at.le(now)))
        .execute(conn)?;
    Ok((sessions, tokens))
}

pub fn with_role(conn: &mut DbConnection, role: Role) -> QueryResult<Vec<Account>> {
    accounts::table
        .filter(accounts::role.eq(role))
        .order(accounts::created_at.asc())
        .select(Account::as_select())
        .load(conn)
}

/// The accounts with these ids (those that still exist).
pub fn by_ids(conn: &mut DbConnection, ids: &[AccountId]) -> QueryResult<Vec<Account>> {
    accounts::table
        .filter(accounts::id.eq_any(ids))
        .select(Account::as_select())
        .load(conn)
}

/// Up to `limit` accounts after `after` in the order of their ids: a page
/// of an export.
pub fn accounts_after(
    conn: &mut DbConnection,
    after: Option<AccountId>,
    limit: i64,
) -> QueryResult<Vec<Account>> {
    let mut query = accounts::table
        .select(Account::as_select())
        .order(accounts::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(accounts::id.gt(after));
    }
    query.load(conn)
}
