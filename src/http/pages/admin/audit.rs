//! `/admin/audit`, the trail of what staff did, and `/admin/outbox`, the
//! mail that waits or was given up on: the two places an admin looks when
//! asked "what happened?".

use std::collections::HashMap;

use actix_web::web::{self, Data, Query};
use actix_web::HttpResponse;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::accounts::Account;
use crate::http::extract::Paging;
use crate::http::pages::{Page, Site, Visitor};
use crate::platform::audit::AuditEntry;
use crate::platform::error::AppError;
use crate::platform::mail::model::{OutboxMessage, OutboxStatus};
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_audit.html",
        include_str!("../templates/admin_audit.html"),
    ),
    (
        "admin_outbox.html",
        include_str!("../templates/admin_outbox.html"),
    ),
];

const PER_PAGE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/audit", web::get().to(audit))
        .route("/admin/outbox", web::get().to(outbox));
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
    status: Option<String>,
}

/// One action as the trail shows it.
#[derive(Serialize)]
pub struct EntryView {
    at: String,
    actor: String,
    action: String,
    subject: String,
    link: Option<String>,
    detail: Option<String>,
}

/// Names each entry's actor and links its subject to its console page.
pub async fn entry_views(
    state: &AppState,
    viewer: &Account,
    entries: Vec<AuditEntry>,
) -> Result<Vec<EntryView>, AppError> {
    let ids = entries.iter().filter_map(|e| e.actor_id).collect();
    let names: HashMap<_, _> = state
        .accounts
        .by_ids(viewer, ids)
        .await?
        .into_iter()
        .map(|a| (a.id, format!("{} <{}>", a.name, a.email)))
        .collect();
    Ok(entries
        .into_iter()
        .map(|e| {
            use crate::platform::audit::model::SubjectKind as K;
            let link = match e.subject_kind {
                K::Trial => Some(format!("/admin/trials/{}", e.subject_id)),
                K::Account => Some(format!("/admin/accounts/{}", e.subject_id)),
                K::Article => Some(format!("/admin/articles/{}", e.subject_id)),
                K::Subscriber => Some(format!("/admin/subscribers/{}", e.subject_id)),
                K::Inquiry => Some(format!("/admin/inquiries#inquiry-{}", e.subject_id)),
                _ => None,
            };
            EntryView {
                at: e.at.and_utc().to_rfc3339(),
                actor: e
                    .actor_id
                    .map(|id| {
                        names
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| "a deleted account".into())
                    })
                    .unwrap_or_else(|| "masthead".into()),
                action: e.action,
                subject: format!("{} {}", e.subject_kind, e.subject_id),
                link,
                detail: e.detail,
            }
        })
        .collect())
}

async fn audit(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let paging = Paging::parse(query.page, None, PER_PAGE, PER_PAGE)?;
    let (entries, total) = state
        .audit
        .recent(admin.role, None, paging.per_page, paging.offset())
        .await?;
    let entries = entry_views(&state, admin, entries).await?;
    Page::new(
        "admin_audit.html",
        context! {
            title => "Audit trail",
            console_area => "audit",
            entries => entries,
            total => total,
            page => paging.page,
            next => (paging.offset() + paging.per_page < total).then_some(paging.page + 1),
        },
    )
    .render(&site, &visitor)
}

#[derive(Serialize)]
struct MessageView {
    created_at: String,
    template: String,
    to: String,
    subject: String,
    status: OutboxStatus,
    attempts: i32,
    next_attempt_at: String,
    last_error: Option<String>,
}

impl From<OutboxMessage> for MessageView {
    fn from(m: OutboxMessage) -> Self {
        Self {
            created_at: m.created_at.and_utc().to_rfc3339(),
            template: m.template,
            to: m.to_address.to_string(),
            subject: m.subject,
            status: m.status,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at.and_utc().to_rfc3339(),
            last_error: m.last_error,
        }
    }
}

async fn outbox(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let paging = Paging::parse(query.page, None, PER_PAGE, PER_PAGE)?;
    let showing = match query.status.as_deref() {
        Some("failed") => "failed",
        _ => "pending",
    };
    let status = if showing == "failed" {
        OutboxStatus::Failed
    } else {
        OutboxStatus::Pending
    };
    let (messages, total) = state
        .outbox
        .list(admin.role, vec![status], paging.per_page, paging.offset())
        .await?;
    let messages: Vec<MessageView> = messages.into_iter().map(MessageView::from).collect();
    Page::new(
        "admin_outbox.html",
        context! {
            title => "Outgoing mail",
            console_area => "outbox",
            showing => showing,
            messages => messages,
            total => total,
            page => paging.page,
            next => (paging.offset() + paging.per_page < total).then_some(paging.page + 1),
        },
    )
    .render(&site, &visitor)
}
