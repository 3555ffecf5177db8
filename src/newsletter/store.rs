//! Subscriber, token and suppression queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{
    EmailHash, ImportId, ImportKind, ImportRecord, ImportUpdate, ImportedSubscriber, NewSubscriber,
    NewToken, PreferencesUpdate, Sections, SignUpRecord, Source, Subscriber, SubscriberId,
    SubscriberStatus, SuppressionReason, TokenPurpose,
};
use crate::accounts::AccountId;
use crate::platform::db::contains_pattern;
use crate::platform::db::schema::{
    accounts, newsletter_imports, newsletter_subscribers, newsletter_suppressions,
    newsletter_tokens, sections,
};
use crate::platform::db::{DbConnection, MultiBackend, Write};
use crate::platform::domain::{EmailAddress, TokenHash};

pub fn find(conn: &mut DbConnection, id: SubscriberId) -> QueryResult<Option<Subscriber>> {
    newsletter_subscribers::table
        .find(id)
        .select(Subscriber::as_select())
        .first(conn)
        .optional()
}

/// What a sign-up asks before it writes.
pub struct AddressState {
    /// The sections on offer, in their order.
    pub sections: Vec<String>,
    /// Why the address is suppressed, if it is.
    pub suppressed: Option<SuppressionReason>,
    /// The subscriber who has the address.
    pub subscriber: Option<SubscriberId>,
    /// The account of the same address.
    pub account: Option<AccountId>,
}

/// Everything a sign-up asks before it writes, in one statement. A sign-up
/// is the busiest write there is, and each statement is a round trip that
/// costs both masthead and the database more than the statement itself;
/// so this reads the sections and the accounts tables directly rather than
/// by three visits through their capabilities.
pub fn address_state(
    conn: &mut DbConnection,
    hash: EmailHash,
    email: &EmailAddress,
) -> QueryResult<AddressState> {
    let state = (
        newsletter_suppressions::table
            .find(hash)
            .select(newsletter_suppressions::reason)
            .single_value(),
        newsletter_subscribers::table
            .filter(newsletter_subscribers::email.eq(email))
            .select(newsletter_subscribers::id)
            .single_value(),
        accounts::table
            .filter(accounts::email.eq(email))
            .select(accounts::id)
            .single_value(),
    );
    // One row per section, each carrying the address's state.
    let rows: Vec<SectionAndState> = sections::table
        .order((sections::position.asc(), sections::name.asc()))
        .select((sections::slug, state.clone()))
        .load(conn)?;
    let (suppressed, subscriber, account) = match rows.first() {
        Some((_, state)) => *state,
        None => diesel::select(state).get_result(conn)?,
    };
    Ok(AddressState {
        sections: rows.into_iter().map(|(slug, _)| slug).collect(),
        suppressed,
        subscriber,
        account,
    })
}

type SectionAndState = (
    String,
    (
        Option<SuppressionReason>,
        Option<SubscriberId>,
        Option<AccountId>,
    ),
);

pub fn find_by_email(
    conn: &mut DbConnection,
    email: &EmailAddress,
) -> QueryResult<Option<Subscriber>> {
    newsletter_subscribers::table
        .filter(newsletter_subscribers::email.eq(email))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_account(
    conn: &mut DbConnection,
    account_id: AccountId,
) -> QueryResult<Option<Subscriber>> {
    newsletter_subscribers::table
        .filter(newsletter_subscribers::account_id.eq(account_id))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()
}

/// Stores a new subscriber.
pub fn insert<'a>(subscriber: &'a NewSubscriber<'a>) -> impl Write + 'a {
    diesel::insert_into(newsletter_subscribers::table).values(subscriber)
}

/// Records a repeated sign-up of an address that is not confirmed: the
/// latest choice of sections and the consent it was given under.
pub fn record_sign_up<'a>(id: SubscriberId, record: &'a SignUpRecord<'a>) -> impl Write + 'a {
    diesel::update(
        newsletter_subscribers::table
            .find(id)
            .filter(newsletter_subscribers::status.ne(SubscriberStatus::Confirmed)),
    )
    .set(record)
}

/// Gives `to` to every subscriber whose sections are exactly `from`; returns
/// how many there were. Both are in the sections' order, so equal choices
/// are equal text.
pub fn replace_sections(
    conn: &mut DbConnection,
    from: &Sections,
    to: &Sections,
) -> QueryResult<usize> {
    diesel::update(newsletter_subscribers::table.filter(newsletter_subscribers::sections.eq(from)))
        .set(newsletter_subscribers::sections.eq(to))
        .execute(conn)
}

pub fn mark_confirmation_sent(id: SubscriberId, now: NaiveDateTime) -> impl Write {
    diesel::update(newsletter_subscribers::table.find(id))
        .set(newsletter_subscribers::confirmation_sent_at.eq(Some(now)))
}

pub fn confirm(conn: &mut DbConnection, id: SubscriberId, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(newsletter_subscribers::table.find(id))
        .set((
            newsletter_subscribers::status.eq(SubscriberStatus::Confirmed),
            newsletter_subscribers::confirmed_at.eq(Some(now)),
            newsletter_subscribers::unsubscribed_at.eq(None::<NaiveDateTime>),
            newsletter_subscribers::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

pub fn unsubscribe(
    conn: &mut DbConnection,
    id: SubscriberId,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        newsletter_subscribers::table
            .find(id)
            .filter(newsletter_subscribers::status.ne(SubscriberStatus::Unsubscribed)),
    )
    .set((
        newsletter_subscribers::status.eq(SubscriberStatus::Unsubscribed),
        newsletter_subscribers::unsubscribed_at.eq(Some(now)),
        newsletter_subscribers::updated_at.eq(now),
    ))
    .execute(conn)
    .map(drop)
}

pub fn update_preferences(
    conn: &mut DbConnection,
    id: SubscriberId,
    update: &PreferencesUpdate,
) -> QueryResult<()> {
    diesel::update(newsletter_subscribers::table.find(id))
        .set(update)
        .execute(conn)
        .map(drop)
}

/// Links the subscription of `email`, if there is one, to an account with
/// the same address.
pub fn link_account(
    conn: &mut DbConnection,
    email: &EmailAddress,
    account_id: AccountId,
) -> QueryResult<bool> {
    diesel::update(
        newsletter_subscribers::table
            .filter(newsletter_subscribers::email.eq(email))
            .filter(newsletter_subscribers::account_id.is_null()),
    )
    .set(newsletter_subscribers::account_id.eq(Some(account_id)))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn delete(conn: &mut DbConnection, id: SubscriberId) -> QueryResult<()> {
    diesel::delete(newsletter_subscribers::table.find(id))
        .execute(conn)
        .map(drop)
}

/// Deletes sign-ups still unconfirmed whose last sign-up is older than
/// `before`; their links go with them.
pub fn purge_unconfirmed(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        newsletter_subscribers::table
            .filter(newsletter_subscribers::status.eq(SubscriberStatus::Pending))
            .filter(newsletter_subscribers::updated_at.lt(before)),
    )
    .execute(conn)
}

pub fn purge_expired_tokens(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(newsletter_tokens::table.filter(newsletter_tokens::expires_at.le(now)))
        .execute(conn)
}

pub fn insert_token(token: NewToken) -> impl Write {
    diesel::insert_into(newsletter_tokens::table).values(token)
}

/// Spends a confirmation link: succeeds once, before it expires.
pub fn spend_confirmation(
    conn: &mut DbConnection,
    hash: &TokenHash,
    now: NaiveDateTime,
) -> QueryResult<Option<SubscriberId>> {
    diesel::update(
        newsletter_tokens::table
            .filter(newsletter_tokens::token_hash.eq(hash))
            .filter(newsletter_tokens::purpose.eq(TokenPurpose::Confirm))
            .filter(newsletter_tokens::used_at.is_null())
            .filter(newsletter_tokens::expires_at.gt(now)),
    )
    .set(newsletter_tokens::used_at.eq(Some(now)))
    .returning(newsletter_tokens::subscriber_id)
    .get_result(conn)
    .optional()
}

/// Whether a confirmation link is unused and unexpired (reads only).
pub fn confirmation_is_live(
    conn: &mut DbConnection,
    hash: &TokenHash,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    newsletter_tokens::table
        .filter(newsletter_tokens::token_hash.eq(hash))
        .filter(newsletter_tokens::purpose.eq(TokenPurpose::Confirm))
        .filter(newsletter_tokens::used_at.is_null())
        .filter(newsletter_tokens::expires_at.gt(now))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
}

/// The subscriber behind a live preferences/unsubscribe link.
pub fn manage_token_subscriber(
    conn: &mut DbConnection,
    hash: &TokenHash,
    now: NaiveDateTime,
) -> QueryResult<Option<Subscriber>> {
    newsletter_tokens::table
        .inner_join(newsletter_subscribers::table)
        .filter(newsletter_tokens::token_hash.eq(hash))
        .filter(newsletter_tokens::purpose.eq(TokenPurpose::Manage))
        .filter(newsletter_tokens::expires_at.gt(now))
        .select(Subscriber::as_select())
        .first(conn)
        .optional()
}

/// Sign-ups and confirmations since `since`: the console's pulse of the list.
pub fn activity_since(conn: &mut DbConnection, since: NaiveDateTime) -> QueryResult<(i64, i64)> {
    let signed_up = newsletter_subscribers::table
        .filter(newsletter_subscribers::created_at.ge(since))
        .count()
        .get_result(conn)?;
    let confirmed = newsletter_subscribers::table
        .filter(newsletter_subscribers::confirmed_at.ge(since))
        .count()
        .get_result(conn)?;
    Ok((signed_up, confirmed))
}

/// What a search of the subscribers is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    /// Part of the address, in any case.
    pub address: Option<String>,
    pub status: Option<SubscriberStatus>,
    /// The slug of a section the subscriber receives.
    pub section: Option<String>,
    pub source: Option<Source>,
}

/// A page of subscribers, newest sign-up first (ties broken by id), and the
/// number of matches.
pub fn search(
    conn: &mut DbConnection,
    filter: &SubscriberFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Subscriber>, i64)> {
    let page = matching(filter)
        .select(Subscriber::as_select())
        .order((
            newsletter_subscribers::created_at.desc(),
            newsletter_subscribers::id.asc(),
        ))
        .limit(limit)
        .offset(offset)
        .load(conn)?;
    let total = matching(filter).count().get_result(conn)?;
    Ok((page, total))
}

fn matching(
    filter: &SubscriberFilter,
) -> newsletter_subscribers::BoxedQuery<'static, MultiBackend> {
    let mut query = newsletter_subscribers::table.into_boxed();
    // Addresses are stored lower-cased, so a lower-cased pattern finds them
    // in any case on both backends.
    if let Some(address) = &filter.address {
        query = query.filter(
            newsletter_subscribers::email
                .like(contains_pattern(&address.to_lowercase()))
                .escape('\\'),
        );
    }
    if let Some(status) = filter.status {
        query = query.filter(newsletter_subscribers::status.eq(status));
    }
    // Sections are a JSON array of slugs: the quoted slug is one element.
    // An empty array is the newsletter as a whole, every section included.
    if let Some(section) = &filter.section {
        let quoted = serde_json::Value::from(section.as_str()).to_string();
        query = query.filter(
            newsletter_subscribers::sections
                .like(contains_pattern(&quoted))
                .escape('\\')
                .or(newsletter_subscribers::sections.eq(Sections::none())),
        );
    }
    if let Some(source) = filter.source {
        query = query.filter(newsletter_subscribers::source.eq(source));
    }
    query
}

pub fn insert_imported(
    conn: &mut DbConnection,
    subscriber: &ImportedSubscriber<'_>,
) -> QueryResult<()> {
    diesel::insert_into(newsletter_subscribers::table)
        .values(subscriber)
        .execute(conn)
        .map(drop)
}

pub fn update_imported(
    conn: &mut DbConnection,
    id: SubscriberId,
    update: &ImportUpdate,
) -> QueryResult<()> {
    diesel::update(newsletter_subscribers::table.find(id))
        .set(update)
        .execute(conn)
        .map(drop)
}

/// Up to `limit` subscribers after `after` in the order of their ids: a
/// page of an export, which reads the list without holding it.
pub fn subscribers_after(
    conn: &mut DbConnection,
    after: Option<SubscriberId>,
    limit: i64,
) -> QueryResult<Vec<Subscriber>> {
    let mut query = newsletter_subscribers::table
        .select(Subscriber::as_select())
        .order(newsletter_subscribers::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(newsletter_subscribers::id.gt(after));
    }
    query.load(conn)
}

/// The unfinished import of the same file, if one was interrupted.
pub fn unfinished_import(
    conn: &mut DbConnection,
    kind: ImportKind,
    file_sha256: &str,
) -> QueryResult<Option<ImportRecord>> {
    newsletter_imports::table
        .filter(newsletter_imports::kind.eq(kind))
        .filter(newsletter_imports::file_sha256.eq(file_sha256))
        .filter(newsletter_imports::finished_at.is_null())
        .order(newsletter_imports::started_at.desc())
        .select(ImportRecord::as_select())
        .first(conn)
        .optional()
}

pub fn find_import(conn: &mut DbConnection, id: ImportId) -> QueryResult<Option<ImportRecord>> {
    newsletter_imports::table
        .find(id)
        .select(ImportRecord::as_select())
        .first(conn)
        .optional()
}

pub fn insert_import(conn: &mut DbConnection, record: &ImportRecord) -> QueryResult<()> {
    diesel::insert_into(newsletter_imports::table)
        .values(record)
        .execute(conn)
        .map(drop)
}

/// Records how far an import got, in the transaction of the rows it
/// committed.
pub fn save_import(conn: &mut DbConnection, record: &ImportRecord) -> QueryResult<()> {
    diesel::update(newsletter_imports::table.find(record.id))
        .set((
            newsletter_imports::last_row.eq(record.last_row),
            newsletter_imports::new_count.eq(record.new_count),
            newsletter_imports::updated_count.eq(record.updated_count),
            newsletter_imports::unchanged_count.eq(record.unchanged_count),
            newsletter_imports::invalid_count.eq(record.invalid_count),
            newsletter_imports::suppressed_count.eq(record.suppressed_count),
            newsletter_imports::updated_at.eq(record.updated_at),
            newsletter_imports::finished_at.eq(record.finished_at),
        ))
        .execute(conn)
        .map(drop)
}
