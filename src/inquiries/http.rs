//! JSON endpoints: the public inquiry and the admins' list.

use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Inquiry, InquiryId};
use super::service::{InquiryError, InquiryForm};
use crate::accounts::{AccountId, CurrentAccount};
use crate::error::AppError;
use crate::extract::{client_ip, parse_id, ApiJson, Paging};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inquiries", web::post().to(submit))
        .route("/admin/inquiries", web::get().to(list))
        .route("/admin/inquiries/{id}", web::patch().to(mark));
}

impl From<InquiryError> for AppError {
    fn from(error: InquiryError) -> Self {
        match error {
            InquiryError::Invalid(errors) => AppError::Validation(errors),
            InquiryError::NotFound => AppError::NotFound,
            InquiryError::Limited(limited) => limited.into(),
            InquiryError::Account(e) => e.into(),
            InquiryError::Storage(e) => e.into(),
            e @ InquiryError::Compose(_) => AppError::Internal(e.into()),
        }
    }
}

/// Every field optional and `seats` of any JSON type, so that the service
/// can name every bad field at once rather than serde the first.
#[derive(Deserialize)]
struct SubmitBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    seats: Value,
    message: Option<String>,
}

/// The same answer for every inquiry, whoever's address it gives.
#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    detail: &'static str,
}

async fn submit(
    state: Data<AppState>,
    req: HttpRequest,
    body: ApiJson<SubmitBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.0;
    let seats = match body.seats {
        Value::Null => String::new(),
        Value::String(text) => text,
        Value::Number(n) => n.to_string(),
        // A list or an object is no number, whatever it holds.
        _ => "not a number".to_owned(),
    };
    state
        .inquiries
        .submit(
            InquiryForm {
                name: body.name,
                email: body.email,
                company: body.company,
                seats,
                message: body.message,
            },
            client_ip(&req),
        )
        .await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        status: "received",
        detail: "thank you: our sales team will answer within one working day",
    }))
}

/// An inquiry as admins see it.
#[derive(Serialize)]
pub struct InquiryView {
    id: InquiryId,
    name: String,
    email: String,
    company: String,
    seats: i32,
    message: Option<String>,
    acknowledged: bool,
    received_at: DateTime<Utc>,
    handled: bool,
    handled_at: Option<DateTime<Utc>>,
    handled_by: Option<AccountId>,
    note: Option<String>,
}

impl From<Inquiry> for InquiryView {
    fn from(i: Inquiry) -> Self {
        Self {
            id: i.id,
            name: i.name,
            email: i.email.to_string(),
            company: i.company,
            seats: i.seats,
            message: i.message,
            acknowledged: i.acknowledged,
            received_at: i.received_at.and_utc(),
            handled: i.handled,
            handled_at: i.handled_at.map(|t| t.and_utc()),
            handled_by: i.handled_by,
            note: i.note,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    /// `true` or `false`; all when absent.
    handled: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

#[derive(Serialize)]
struct ListView {
    total: i64,
    page: i64,
    per_page: i64,
    inquiries: Vec<InquiryView>,
}

async fn list(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let paging = Paging::parse(query.page, query.per_page, 50, 200)?;
    let handled = match query.handled.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(AppError::field("handled", "invalid", "true or false")),
    };
    let (inquiries, total) = state
        .inquiries
        .list(&current.account, handled, paging.per_page, paging.offset())
        .await?;
    Ok(HttpResponse::Ok().json(ListView {
        total,
        page: paging.page,
        per_page: paging.per_page,
        inquiries: inquiries.into_iter().map(InquiryView::from).collect(),
    }))
}

#[derive(Deserialize)]
struct MarkBody {
    handled: bool,
    note: Option<String>,
}

async fn mark(
    state: Data<AppState>,
    current: CurrentAccount,
    id: Path<String>,
    body: ApiJson<MarkBody>,
) -> Result<HttpResponse, AppError> {
    let id: InquiryId = parse_id(&id)?;
    let body = body.0;
    let inquiry = state
        .inquiries
        .mark(&current.account, id, body.handled, body.note)
        .await?;
    Ok(HttpResponse::Ok().json(InquiryView::from(inquiry)))
}
