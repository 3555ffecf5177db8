//! What another capability or flow may do to the newsletter inside its own
//! transaction. Each function takes the connection of that transaction.

use chrono::NaiveDateTime;
use diesel::QueryResult;

use super::model::{Sections, SubscriberId};
use super::store;
use crate::platform::db::DbConnection;
use crate::platform::domain::{AccountId, EmailAddress};
use crate::platform::mail::suppression::{BounceKind, Entry, SuppressionList, Whom};

/// Records a bounce or complaint report through the bounce policy; a
/// complaint also unsubscribes, as the reader asked to hear no more.
/// Returns whether the address is now suppressed.
pub fn record_report(
    conn: &mut DbConnection,
    suppressions: &SuppressionList,
    email: &EmailAddress,
    report: Entry<'_>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let done = suppressions.add(conn, Whom::Address(email), report, now)?;
    let complaint = matches!(
        report,
        Entry::Report {
            kind: BounceKind::Complaint,
            ..
        }
    );
    if complaint {
        if let Some(subscriber) = store::find_by_email(conn, email)? {
            store::unsubscribe(conn, subscriber.id, now)?;
        }
    }
    Ok(done.is_suppressed())
}

/// A reader registered: the subscription of their address, if there is
/// one, is linked to the account.
pub fn account_registered(
    conn: &mut DbConnection,
    account: AccountId,
    email: &EmailAddress,
) -> QueryResult<()> {
    if store::link_account(conn, email, account)? {
        tracing::info!(account_id = %account, "newsletter subscription linked");
    }
    Ok(())
}

/// The address of a subscriber, for a bounce that names the subscriber.
pub fn subscriber_email(
    conn: &mut DbConnection,
    id: SubscriberId,
) -> QueryResult<Option<EmailAddress>> {
    Ok(store::find(conn, id)?.map(|s| s.email))
}

/// A section was added: it reaches everyone who received every section
/// before it, as they took the newsletter as a whole (the sign-up ticks
/// every section unless the reader unticks some); a reader who picked some
/// keeps their pick. Call it in the transaction that adds the section, with
/// the sections' slugs before and after, in their order.
pub fn section_added(
    conn: &mut DbConnection,
    before: &[String],
    after: &[String],
) -> QueryResult<usize> {
    store::replace_sections(conn, &Sections::all(before), &Sections::all(after))
}
