//! Company subscriptions: the admins' organisations, the readers' "does my
//! company subscribe?" and the seat a join link takes.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::emails::{CompanyJoinLink, CompanyNoMatch, CompanySeatsFull, CompanySeatsTaken};
use super::model::{
    Member, MemberId, NewDomain, NewJoinToken, NewManager, NewMember, NewOrganization,
    Organization, OrganizationId,
};
use super::store;
use crate::accounts::service::require;
use crate::accounts::Account;
use crate::accounts::AccountError;
use crate::accounts::AccountId;
use crate::accounts::Role;
use crate::platform::abuse::{AbuseGuard, Form, Limited};
use crate::platform::audit::{self, model::SubjectKind, Subject};
use crate::platform::clock::SharedClock;
use crate::platform::db::{self, DbConnection, Pool, StorageError};
use crate::platform::domain::{
    optional_text, EmailAddress, FieldError, Fields, Invalid, PlainText, Token,
};
use crate::platform::mail::compose::ComposeError;
use crate::platform::mail::{store as outbox, ComposedEmail, Composer};

/// How long a join link works.
pub const JOIN_LINK_HOURS: i64 = 48;
/// One answer per address in this many minutes: asking again in the window
/// sends nothing more, so the form cannot be used to flood a mailbox.
const REPEAT_MINUTES: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum OrganizationError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("no such organisation")]
    NotFound,
    #[error("the domain {0} already belongs to an organisation")]
    DomainTaken(String),
    #[error("{} in use: remove members before lowering the seat count below that", seats_in_use(*in_use))]
    SeatsInUse { in_use: i32 },
    #[error("this link is invalid, used or expired")]
    InvalidLink,
    #[error("this link was sent to another email address")]
    WrongAddress,
    #[error("all of the company's seats are taken")]
    Full,
    #[error("this account already holds a company seat")]
    AlreadyMember,
    #[error("no such member")]
    NoSuchMember,
    #[error("no such account")]
    NoSuchAccount,
    #[error(transparent)]
    Limited(#[from] Limited),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("composing an email")]
    Compose(#[from] ComposeError),
}

/// "1 seat is", "3 seats are".
fn seats_in_use(n: i32) -> String {
    if n == 1 {
        "1 seat is".to_owned()
    } else {
        format!("{n} seats are")
    }
}

impl From<DieselError> for OrganizationError {
    fn from(error: DieselError) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// An organisation as an admin edits it.
pub struct OrganizationForm {
    pub name: String,
    pub seat_count: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    /// On creation only: the first domains.
    pub domains: Vec<String>,
}

/// A change to an organisation: what is `None` stays as it is (`notes:
/// Some(None)` clears the notes).
#[derive(Default)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    pub seat_count: Option<i64>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub notes: Option<Option<String>>,
}

/// One organisation with its domains, members and managers.
pub struct Detail {
    pub organization: Organization,
    pub domains: Vec<String>,
    pub members: Vec<(Member, Account)>,
    pub managers: Vec<Account>,
}

/// What a join link's page shows before its button is pressed.
pub struct Invitation {
    pub organization: String,
    pub email: String,
}

/// An email domain as organisations hold it: lower-case, a dot, letters,
/// digits and hyphens; never a free-mail provider's (anyone can have an
/// address there).
pub fn parse_domain(input: &str) -> Result<String, Invalid> {
    let domain = input.trim().trim_start_matches('@').to_ascii_lowercase();
    let well_formed = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !well_formed {
        return Err(Invalid::new(
            "invalid_domain",
            "enter a domain such as example.com",
        ));
    }
    if crate::platform::domain::mail_domains::is_free_mail(&domain) {
        return Err(Invalid::new(
            "free_mail_domain",
            format!("{domain} is a free email provider: anyone can have an address there"),
        ));
    }
    Ok(domain)
}

/// Gives `account` a seat of the organisation: the seat is taken by one
/// conditional UPDATE (none taken when all are, or the subscription is not
/// running), then the membership and its right to read are written — all in
/// the caller's transaction, so a failure later gives the seat back.
pub fn take_seat(
    conn: &mut DbConnection,
    organization: &Organization,
    account: AccountId,
    now: DateTime<Utc>,
) -> Result<MemberId, OrganizationError> {
    if !store::take_seat(conn, organization.id, now.naive_utc())? {
        return Err(OrganizationError::Full);
    }
    let entitlement = crate::access::tx::grant_company_seat(
        conn,
        account,
        &organization.id.to_string(),
        &organization.name,
        (
            organization.starts_at.and_utc(),
            organization.ends_at.and_utc(),
        ),
        now,
    )?;
    let id = MemberId::new();
    store::insert_member(
        conn,
        &NewMember {
            id,
            organization_id: organization.id,
            account_id: account,
            entitlement_id: Some(entitlement),
            joined_at: now.naive_utc(),
        },
    )
    .map_err(|e| match e {
        // The one-seat-per-account index: the reader holds a seat already.
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            OrganizationError::AlreadyMember
        }
        other => other.into(),
    })?;
    Ok(id)
}

#[derive(Clone)]
pub struct OrganizationService {
    pool: Pool,
    clock: SharedClock,
    composer: Arc<Composer>,
    sales_email: String,
    abuse: Arc<AbuseGuard>,
}

impl OrganizationService {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        composer: Arc<Composer>,
        sales_email: String,
        abuse: Arc<AbuseGuard>,
    ) -> Self {
        Self {
            pool,
            clock,
            composer,
            sales_email,
            abuse,
        }
    }

    /// "Does my company subscribe?": answers by email only, so the caller
    /// learns nothing about which companies subscribe. A free seat gets a
    /// join link; a full company gets a "seats taken" note (and its
    /// managers and sales hear of it, once a day); no match gets the trial
    /// and sales options.
    #[tracing::instrument(skip_all)]
    pub async fn check_access(
        &self,
        email: &str,
        client: Option<IpAddr>,
    ) -> Result<(), OrganizationError> {
        let email = EmailAddress::parse(email)
            .map_err(|e| OrganizationError::Invalid(vec![e.on("email")]))?;
        self.abuse
            .admit(Form::CompanyAccess, client, Some(&email))?;
        let abuse = Arc::clone(&self.abuse);
        let now = self.clock.now();
        let composer = Arc::clone(&self.composer);
        let sales = EmailAddress::parse(&self.sales_email).ok();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let window = now.timestamp() / (REPEAT_MINUTES * 60);
                let key = format!("company_access:{email}:{window}");
                if outbox::is_queued(conn, &key)? {
                    tracing::info!(email_domain = email.domain(), "company access asked again");
                    return Ok(());
                }
                let organization = store::by_domain(conn, email.domain())?
                    .filter(|o| o.is_active(now.naive_utc()));
                let message =
                    access_answer(conn, &composer, &email, organization, sales.as_ref(), now)?;
                abuse.enqueue(conn, &key, &message, now)?;
                Ok(())
            })
        })
        .await
    }

    /// What a join link offers, without spending it.
    pub async fn invitation(&self, token: &str) -> Result<Invitation, OrganizationError> {
        let token = Token::parse(token).map_err(|_| OrganizationError::InvalidLink)?;
        let now = self.clock.now();
        db::run(&self.pool, move |conn| {
            let link = store::live_join_token(conn, &token.hash(), now.naive_utc())?
                .ok_or(OrganizationError::InvalidLink)?;
            let organization =
                store::find(conn, link.organization_id)?.ok_or(OrganizationError::InvalidLink)?;
            Ok(Invitation {
                organization: organization.name,
                email: link.email,
            })
        })
        .await
    }

    /// The organisations `manager` manages, each in full: their `/company`
    /// page.
    pub async fn managed_by(&self, manager: &Account) -> Result<Vec<Detail>, OrganizationError> {
        let manager = manager.id;
        db::run(&self.pool, move |conn| {
            store::managed_by(conn, manager)?
                .into_iter()
                .map(|id| detail(conn, id))
                .collect()
        })
        .await
    }

    pub async fn list(&self, admin: &Account) -> Result<Vec<Organization>, OrganizationError> {
        require(admin, Role::Admin)?;
        db::run(&self.pool, |conn| Ok(store::list(conn)?)).await
    }

    /// One organisation, for an admin or one of its managers.
    pub async fn get(
        &self,
        actor: &Account,
        id: OrganizationId,
    ) -> Result<Detail, OrganizationError> {
        let actor = actor.clone();
        db::run(&self.pool, move |conn| {
            may_manage(conn, &actor, id)?;
            detail(conn, id)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(admin = %admin.id))]
    pub async fn create(
        &self,
        admin: &Account,
        form: OrganizationForm,
    ) -> Result<Detail, OrganizationError> {
        require(admin, Role::Admin)?;
        let now = self.clock.now();
        let (parsed, domains) = parse_new(&form, now)?;
        let admin_id = admin.id;
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let id = OrganizationId::new();
                insert_organization(conn, id, &parsed, now)?;
                for domain in &domains {
                    add_domain_in(conn, id, domain, now)?;
                }
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "organization.create",
                    &Subject::new(SubjectKind::Organization, id),
                    Some(&created_summary(&parsed, &domains)),
                )?;
                detail(conn, id)
            })
        })
        .await
    }

    /// Changes name, seats, period and notes (each left as it is when not
    /// given). Fewer seats than are in use is refused; the members' rights
    /// move with the period.
    #[tracing::instrument(skip_all, fields(admin = %admin.id, organization_id = %id))]
    pub async fn update(
        &self,
        admin: &Account,
        id: OrganizationId,
        patch: OrganizationPatch,
    ) -> Result<Detail, OrganizationError> {
        require(admin, Role::Admin)?;
        let now = self.clock.now();
        let admin_id = admin.id;
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                let before = store::find(conn, id)?.ok_or(OrganizationError::NotFound)?;
                let (name, seat_count, starts_at, ends_at, notes) =
                    parse_whole(&patched(&before, patch), now)?;
                if !store::update(
                    conn,
                    id,
                    name.as_str(),
                    seat_count,
                    starts_at.naive_utc(),
                    ends_at.naive_utc(),
                    notes.as_ref().map(PlainText::as_str),
                    now.naive_utc(),
                )? {
                    return Err(OrganizationError::SeatsInUse {
                        in_use: before.seats_used,
                    });
                }
                crate::access::tx::set_company_period(
                    conn,
                    &id.to_string(),
                    name.as_str(),
                    (starts_at, ends_at),
                )?;
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "organization.update",
                    &Subject::new(SubjectKind::Organization, id),
                    Some(&updated_summary(&before, seat_count, (starts_at, ends_at))),
                )?;
                detail(conn, id)
            })
        })
        .await
    }

    pub async fn add_domain(
        &self,
        admin: &Account,
        id: OrganizationId,
        domain: &str,
    ) -> Result<Detail, OrganizationError> {
        require(admin, Role::Admin)?;
        let domain =
            parse_domain(domain).map_err(|e| OrganizationError::Invalid(vec![e.on("domain")]))?;
        let now = self.clock.now();
        let admin_id = admin.id;
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                store::find(conn, id)?.ok_or(OrganizationError::NotFound)?;
                add_domain_in(conn, id, &domain, now)?;
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "organization.add_domain",
                    &Subject::new(SubjectKind::Organization, id),
                    Some(&domain),
                )?;
                detail(conn, id)
            })
        })
        .await
    }

    pub async fn remove_domain(
        &self,
        admin: &Account,
        id: OrganizationId,
        domain: &str,
    ) -> Result<Detail, OrganizationError> {
        require(admin, Role::Admin)?;
        let domain = domain.trim().to_ascii_lowercase();
        let now = self.clock.now();
        let admin_id = admin.id;
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if !store::delete_domain(conn, id, &domain)? {
                    return Err(OrganizationError::NotFound);
                }
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "organization.remove_domain",
                    &Subject::new(SubjectKind::Organization, id),
                    Some(&domain),
                )?;
                detail(conn, id)
            })
        })
        .await
    }

    /// Makes the account with this address a manager of the organisation.
    pub async fn add_manager(
        &self,
        admin: &Account,
        id: OrganizationId,
        email: &str,
    ) -> Result<Detail, OrganizationError> {
        require(admin, Role::Admin)?;
        let email = EmailAddress::parse(email)
            .map_err(|e| OrganizationError::Invalid(vec![e.on("email")]))?;
        let now = self.clock.now();
        let admin_id = admin.id;
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                store::find(conn, id)?.ok_or(OrganizationError::NotFound)?;
                let manager = crate::accounts::tx::find_by_email(conn, &email)?
                    .ok_or(OrganizationError::NoSuchAccount)?;
                if !store::managers_of(conn, id)?.contains(&manager.id) {
                    store::insert_manager(
                        conn,
                        &NewManager {
                            organization_id: id,
                            account_id: manager.id,
                        },
                    )?;
                    audit::record(
                        conn,
                        now,
                        Some(admin_id),
                        "organization.add_manager",
                        &Subject::new(SubjectKind::Organization, id),
                        Some(&format!("account {}", manager.id)),
                    )?;
                }
                detail(conn, id)
            })
        })
        .await
    }

    pub async fn remove_manager(
        &self,
        admin: &Account,
        id: OrganizationId,
        account: AccountId,
    ) -> Result<Detail, OrganizationError> {
        require(admin, Role::Admin)?;
        let now = self.clock.now();
        let admin_id = admin.id;
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                if !store::delete_manager(conn, id, account)? {
                    return Err(OrganizationError::NoSuchAccount);
                }
                audit::record(
                    conn,
                    now,
                    Some(admin_id),
                    "organization.remove_manager",
                    &Subject::new(SubjectKind::Organization, id),
                    Some(&format!("account {account}")),
                )?;
                detail(conn, id)
            })
        })
        .await
    }

    /// Removes a member (by an admin, or a manager of the organisation):
    /// the right to read ends at once and the seat is free again.
    #[tracing::instrument(skip_all, fields(actor = %actor.id, organization_id = %id, member_id = %member))]
    pub async fn remove_member(
        &self,
        actor: &Account,
        id: OrganizationId,
        member: MemberId,
    ) -> Result<Detail, OrganizationError> {
        let now = self.clock.now();
        let actor = actor.clone();
        db::run(&self.pool, move |conn| {
            db::transaction(conn, |conn| {
                may_manage(conn, &actor, id)?;
                let found = store::find_member(conn, member)?
                    .filter(|m| m.organization_id == id)
                    .ok_or(OrganizationError::NoSuchMember)?;
                if store::remove_member(conn, member, now.naive_utc())? {
                    store::free_seat(conn, id)?;
                    if let Some(entitlement) = found.entitlement_id {
                        crate::access::tx::revoke(conn, entitlement, now.naive_utc())?;
                    }
                    audit::record(
                        conn,
                        now,
                        Some(actor.id),
                        "organization.remove_member",
                        &Subject::new(SubjectKind::Organization, id),
                        Some(&format!("account {}", found.account_id)),
                    )?;
                }
                detail(conn, id)
            })
        })
        .await
    }
}

/// Admins manage every organisation; a manager only their own. Anyone
/// else is told it does not exist.
fn may_manage(
    conn: &mut DbConnection,
    actor: &Account,
    id: OrganizationId,
) -> Result<(), OrganizationError> {
    if actor.role.includes(Role::Admin) || store::managers_of(conn, id)?.contains(&actor.id) {
        Ok(())
    } else {
        Err(OrganizationError::NotFound)
    }
}

fn detail(conn: &mut DbConnection, id: OrganizationId) -> Result<Detail, OrganizationError> {
    let organization = store::find(conn, id)?.ok_or(OrganizationError::NotFound)?;
    let domains = store::domains_of(conn, id)?;
    let members = store::members_of(conn, id)?;
    let ids: Vec<AccountId> = members.iter().map(|m| m.account_id).collect();
    let accounts = crate::accounts::tx::by_ids(conn, &ids)?;
    let members = members
        .into_iter()
        .filter_map(|m| {
            let account = accounts.iter().find(|a| a.id == m.account_id)?.clone();
            Some((m, account))
        })
        .collect();
    let manager_ids = store::managers_of(conn, id)?;
    let managers = crate::accounts::tx::by_ids(conn, &manager_ids)?;
    Ok(Detail {
        organization,
        domains,
        members,
        managers,
    })
}

fn add_domain_in(
    conn: &mut DbConnection,
    id: OrganizationId,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<(), OrganizationError> {
    store::insert_domain(
        conn,
        &NewDomain {
            domain,
            organization_id: id,
            created_at: now.naive_utc(),
        },
    )
    .map_err(|e| match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            OrganizationError::DomainTaken(domain.to_owned())
        }
        other => other.into(),
    })
}

type Parsed = (
    PlainText,
    i32,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<PlainText>,
);

/// The fields an admin edits, parsed; errors go to `fields`.
fn parse_form(fields: &mut Fields, form: &OrganizationForm, now: DateTime<Utc>) -> Option<Parsed> {
    let name = fields.take("name", PlainText::parse(&form.name, 200));
    let seat_count = fields.take(
        "seat_count",
        i32::try_from(form.seat_count)
            .ok()
            .filter(|n| (0..=100_000).contains(n))
            .ok_or_else(|| Invalid::new("out_of_range", "a number of seats from 0 to 100000")),
    );
    let notes = fields.take("notes", optional_text(form.notes.as_deref(), 2000));
    let starts_at = form.starts_at.unwrap_or(now);
    let ends_at = form.ends_at;
    if ends_at.is_none() {
        fields.reject(
            "ends_at",
            Invalid::new("required", "give the end of the subscription"),
        );
    }
    if ends_at.is_some_and(|end| end <= starts_at) {
        fields.reject(
            "ends_at",
            Invalid::new("before_start", "the end must come after the start"),
        );
    }
    Some((name?, seat_count?, starts_at, ends_at?, notes?))
}

/// A new organisation's fields and its first domains, parsed; every bad
/// field is reported at once.
fn parse_new(
    form: &OrganizationForm,
    now: DateTime<Utc>,
) -> Result<(Parsed, Vec<String>), OrganizationError> {
    let mut fields = Fields::default();
    let parsed = parse_form(&mut fields, form, now);
    let mut domains = Vec::new();
    if form.domains.is_empty() {
        fields.reject(
            "domains",
            Invalid::new("required", "give at least one email domain"),
        );
    }
    for domain in &form.domains {
        if let Some(domain) = fields.take("domains", parse_domain(domain)) {
            domains.push(domain);
        }
    }
    fields.finish().map_err(OrganizationError::Invalid)?;
    let parsed = parsed.ok_or_else(|| OrganizationError::Invalid(Vec::new()))?;
    Ok((parsed, domains))
}

/// `parse_form` with its errors returned.
fn parse_whole(form: &OrganizationForm, now: DateTime<Utc>) -> Result<Parsed, OrganizationError> {
    let mut fields = Fields::default();
    let parsed = parse_form(&mut fields, form, now);
    fields.finish().map_err(OrganizationError::Invalid)?;
    parsed.ok_or_else(|| OrganizationError::Invalid(Vec::new()))
}

/// The whole form an update amounts to: what the patch leaves out stays as
/// `before` has it.
fn patched(before: &Organization, patch: OrganizationPatch) -> OrganizationForm {
    OrganizationForm {
        name: patch.name.unwrap_or_else(|| before.name.clone()),
        seat_count: patch.seat_count.unwrap_or(i64::from(before.seat_count)),
        starts_at: Some(patch.starts_at.unwrap_or(before.starts_at.and_utc())),
        ends_at: Some(patch.ends_at.unwrap_or(before.ends_at.and_utc())),
        notes: patch.notes.unwrap_or_else(|| before.notes.clone()),
        domains: Vec::new(),
    }
}

fn insert_organization(
    conn: &mut DbConnection,
    id: OrganizationId,
    parsed: &Parsed,
    now: DateTime<Utc>,
) -> Result<(), OrganizationError> {
    let (name, seat_count, starts_at, ends_at, notes) = parsed;
    store::insert(
        conn,
        &NewOrganization {
            id,
            name: name.as_str(),
            seat_count: *seat_count,
            seats_used: 0,
            starts_at: starts_at.naive_utc(),
            ends_at: ends_at.naive_utc(),
            notes: notes.as_ref().map(PlainText::as_str),
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
        },
    )?;
    Ok(())
}

/// The audit trail's line for a new organisation.
fn created_summary(parsed: &Parsed, domains: &[String]) -> String {
    let (name, seat_count, starts_at, ends_at, _) = parsed;
    format!(
        "{}: {seat_count} seats, {} to {}, domains {}",
        name.as_str(),
        starts_at.format("%Y-%m-%d"),
        ends_at.format("%Y-%m-%d"),
        domains.join(", ")
    )
}

/// The audit trail's line for a change: seats and period, before and after.
fn updated_summary(
    before: &Organization,
    seat_count: i32,
    (starts_at, ends_at): (DateTime<Utc>, DateTime<Utc>),
) -> String {
    format!(
        "seats {} → {seat_count}; period {} to {} → {} to {}",
        before.seat_count,
        before.starts_at.format("%Y-%m-%d"),
        before.ends_at.format("%Y-%m-%d"),
        starts_at.format("%Y-%m-%d"),
        ends_at.format("%Y-%m-%d"),
    )
}

/// The email that answers "does my company subscribe?" for `email`, given
/// the live organisation its domain belongs to, if any.
fn access_answer(
    conn: &mut DbConnection,
    composer: &Composer,
    email: &EmailAddress,
    organization: Option<Organization>,
    sales: Option<&EmailAddress>,
    now: DateTime<Utc>,
) -> Result<ComposedEmail, OrganizationError> {
    let answer = match organization {
        Some(organization) if organization.has_free_seat() => {
            join_link(conn, composer, email, &organization, now)?
        }
        Some(organization) => {
            notify_full(conn, composer, &organization, email, sales, now)?;
            composer.compose(
                email,
                &CompanySeatsTaken {
                    organization: organization.name.clone(),
                    trial_link: composer.link("/trial"),
                    contact_sales_link: composer.link("/contact-sales"),
                },
            )?
        }
        None => {
            tracing::info!(email_domain = email.domain(), "no company subscription");
            composer.compose(
                email,
                &CompanyNoMatch {
                    trial_link: composer.link("/trial"),
                    contact_sales_link: composer.link("/contact-sales"),
                },
            )?
        }
    };
    Ok(answer)
}

/// Stores a join token for `email` and composes the link that spends it.
fn join_link(
    conn: &mut DbConnection,
    composer: &Composer,
    email: &EmailAddress,
    organization: &Organization,
    now: DateTime<Utc>,
) -> Result<ComposedEmail, OrganizationError> {
    let token = Token::generate();
    store::insert_join_token(
        conn,
        &NewJoinToken {
            token_hash: &token.hash(),
            organization_id: organization.id,
            email: email.as_str(),
            created_at: now.naive_utc(),
            expires_at: (now + Duration::hours(JOIN_LINK_HOURS)).naive_utc(),
        },
    )?;
    tracing::info!(organization_id = %organization.id, "join link sent");
    Ok(composer.compose(
        email,
        &CompanyJoinLink {
            organization: organization.name.clone(),
            link: composer.link(&format!("/company-access/join?token={}", token.expose())),
            expires_hours: JOIN_LINK_HOURS,
        },
    )?)
}

/// Tells the managers and sales that someone found no free seat: at most
/// once a day per organisation (the outbox key carries the date).
fn notify_full(
    conn: &mut DbConnection,
    composer: &Composer,
    organization: &Organization,
    asked_by: &EmailAddress,
    sales: Option<&EmailAddress>,
    now: DateTime<Utc>,
) -> Result<(), OrganizationError> {
    let notice = CompanySeatsFull {
        organization: organization.name.clone(),
        seat_count: organization.seat_count,
        email_domain: asked_by.domain().to_owned(),
    };
    let day = now.format("%Y-%m-%d");
    let managers = store::managers_of(conn, organization.id)?;
    let mut recipients: Vec<EmailAddress> = crate::accounts::tx::by_ids(conn, &managers)?
        .into_iter()
        .map(|a| a.email)
        .collect();
    recipients.extend(sales.cloned());
    for to in recipients {
        let key = format!("company_full:{}:{day}:{to}", organization.id);
        outbox::enqueue(
            conn,
            &key,
            &composer.compose(&to, &notice)?,
            now.naive_utc(),
        )?;
    }
    tracing::info!(organization_id = %organization.id, "company full: notified");
    Ok(())
}
