//! A reader takes the seat a join link offers: the seat and its right to
//! read, the address marked verified (following the link proves it), and a
//! trial request still waiting closed, as the seat makes it moot, in one
//! transaction.

use crate::accounts::tx as accounts;
use crate::accounts::Account;
use crate::organizations::model::Organization;
use crate::organizations::tx as organizations;
use crate::organizations::OrganizationError;
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::db::{self, Pool};
use crate::platform::domain::Token;
use crate::trials::tx as trials;

#[tracing::instrument(skip_all, fields(account_id = %reader.id))]
pub async fn join_company(
    pool: &Pool,
    clock: &SharedClock,
    reader: &Account,
    token: &str,
) -> Result<Organization, OrganizationError> {
    let token = Token::parse(token).map_err(|_| OrganizationError::InvalidLink)?;
    let now = clock.now();
    let (reader_id, email) = (reader.id, reader.email.clone());
    let organization = db::run(pool, move |conn| {
        db::transaction(conn, |conn| {
            let (organization, member) =
                organizations::join_by_link(conn, reader_id, &email, &token, now)?;
            accounts::mark_verified(conn, reader_id, now.naive_utc())?;
            trials::close_pending_on_join(conn, reader_id, &organization.name, now)?;
            let subject = Subject::new(SubjectKind::Organization, organization.id);
            let detail = format!("member {member}: account {reader_id}");
            audit::record(
                conn,
                now,
                Some(reader_id),
                "organization.join",
                &subject,
                Some(&detail),
            )?;
            Ok::<_, OrganizationError>(organization)
        })
    })
    .await?;
    tracing::info!(organization_id = %organization.id, "seat taken");
    Ok(organization)
}
