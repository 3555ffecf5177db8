//! `/admin/inquiries`: sales inquiries, newest first, each with its handled
//! flag and note and a form that changes them. The page and
//! `PATCH /api/v1/admin/inquiries/{id}` call the same
//! `InquiryService::mark`, which checks the admin and writes the audit trail.

use std::collections::HashMap;

use actix_web::web::{self, Data, Path, Query};
use actix_web::HttpResponse;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountId};
use crate::http::extract::{parse_id, Paging};
use crate::http::pages::flash::Kind;
use crate::http::pages::form::{field_errors, Form, Posted};
use crate::http::pages::{see_other_with, Page, Site, Visitor};
use crate::inquiries::model::{Inquiry, InquiryId};
use crate::platform::error::AppError;
use crate::state::AppState;

pub const TEMPLATES: &[(&str, &str)] = &[(
    "admin_inquiries.html",
    include_str!("../templates/admin_inquiries.html"),
)];

const LIST: &str = "/admin/inquiries";
const PER_PAGE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(LIST, web::get().to(list))
        .route("/admin/inquiries/{id}", web::post().to(mark));
}

/// Which inquiries the list shows; an unknown value shows the default
/// (those waiting), as a filter is only a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Showing {
    Unhandled,
    Handled,
    All,
}

impl Showing {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("handled") => Self::Handled,
            Some("all") => Self::All,
            _ => Self::Unhandled,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Unhandled => "unhandled",
            Self::Handled => "handled",
            Self::All => "all",
        }
    }

    fn handled(self) -> Option<bool> {
        match self {
            Self::Unhandled => Some(false),
            Self::Handled => Some(true),
            Self::All => None,
        }
    }

    fn location(self) -> String {
        match self {
            Self::Unhandled => LIST.to_owned(),
            other => format!("{LIST}?show={}", other.as_str()),
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    show: Option<String>,
    page: Option<i64>,
}

/// An inquiry as the list shows it.
#[derive(Serialize)]
struct Row {
    id: InquiryId,
    name: String,
    email: String,
    company: String,
    seats: i32,
    message: Option<String>,
    acknowledged: bool,
    received_at: String,
    handled: bool,
    handled_at: Option<String>,
    handled_by: Option<String>,
    note: Option<String>,
}

async fn list(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let showing = Showing::parse(query.show.as_deref());
    show(&state, &site, &visitor, showing, query.page, Form::new()).await
}

async fn show(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    showing: Showing,
    page: Option<i64>,
    form: Form,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let paging = Paging::parse(page, None, PER_PAGE, PER_PAGE)?;
    let (inquiries, total) = state
        .inquiries
        .list(admin, showing.handled(), paging.per_page, paging.offset())
        .await?;
    let names = handlers(state, admin, &inquiries).await?;
    let rows: Vec<Row> = inquiries
        .into_iter()
        .map(|inquiry| Row::new(inquiry, &names))
        .collect();
    let status = form.status();
    Page::new(
        "admin_inquiries.html",
        context! {
            title => "Sales inquiries",
            console_area => "inquiries",
            showing => showing.as_str(),
            inquiries => rows,
            form => form,
            total => total,
            page => paging.page,
            next => (paging.offset() + paging.per_page < total).then_some(paging.page + 1),
        },
    )
    .status(status)
    .render(site, visitor)
}

/// The names of the admins who handled `inquiries`.
async fn handlers(
    state: &AppState,
    admin: &Account,
    inquiries: &[Inquiry],
) -> Result<HashMap<AccountId, String>, AppError> {
    let ids = inquiries.iter().filter_map(|i| i.handled_by).collect();
    Ok(state
        .accounts
        .by_ids(admin, ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

impl Row {
    fn new(i: Inquiry, names: &HashMap<AccountId, String>) -> Self {
        Self {
            id: i.id,
            handled_by: i.handled_by.map(|id| {
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "a deleted account".into())
            }),
            name: i.name,
            email: i.email.to_string(),
            company: i.company,
            seats: i.seats,
            message: i.message,
            acknowledged: i.acknowledged,
            received_at: i.received_at.and_utc().to_rfc3339(),
            handled: i.handled,
            handled_at: i.handled_at.map(|t| t.and_utc().to_rfc3339()),
            note: i.note,
        }
    }
}

#[tracing::instrument(skip_all)]
async fn mark(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
    posted: Posted,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: InquiryId = parse_id(&id)?;
    let showing = Showing::parse(posted.optional("show").as_deref());
    let handled = posted.checked("handled");
    match state
        .inquiries
        .mark(admin, id, handled, posted.optional("note"))
        .await
        .map_err(AppError::from)
    {
        Ok(inquiry) => Ok(see_other_with(
            &site,
            &showing.location(),
            Kind::Success,
            if inquiry.handled {
                format!("Marked the inquiry from {} as handled.", inquiry.company)
            } else {
                format!("Reopened the inquiry from {}.", inquiry.company)
            },
        )),
        Err(error) => match field_errors(&error) {
            // The note is the only field: the error goes beside this row's.
            Some(errors) => {
                let field = format!("note-{id}");
                let errors = errors
                    .into_iter()
                    .map(|mut e| {
                        e.field.clone_from(&field);
                        e
                    })
                    .collect();
                let form = Form::new()
                    .with(&field, posted.value("note"))
                    .with_errors(errors);
                show(&state, &site, &visitor, showing, None, form).await
            }
            None => Err(error),
        },
    }
}
