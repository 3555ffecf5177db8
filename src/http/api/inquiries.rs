//! JSON endpoints: the public inquiry and the admins' list.

use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::accounts::AccountId;
use crate::http::api::responses::{Forbidden, NotFound, RateLimited, Unauthorized};
use crate::http::extract::{client_ip, parse_id, ApiJson, Paging};
use crate::http::session::CurrentAccount;
use crate::inquiries::model::{Inquiry, InquiryId};
use crate::inquiries::service::{InquiryError, InquiryForm};
use crate::platform::error::AppError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(paths(submit, list, mark))]
pub struct Api;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inquiries", web::post().to(submit));
}

/// Under `/admin`.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inquiries", web::get().to(list))
        .route("/inquiries/{id}", web::patch().to(mark));
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
#[derive(Deserialize, ToSchema)]
struct SubmitBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[serde(default)]
    company: String,
    /// How many readers, 1 to 100000: a number, or a string of digits.
    #[serde(default)]
    #[schema(schema_with = seats_schema)]
    seats: Value,
    message: Option<String>,
}

fn seats_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(crate::inquiries::service::MAX_SEATS)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$")),
            )
            .build(),
    )
}

/// The same answer for every inquiry, whoever's address it gives.
#[derive(Serialize, ToSchema)]
#[schema(as = InquiryReceived)]
struct Accepted {
    status: &'static str,
    detail: &'static str,
}

/// Asks sales for multi-user pricing: stored, acknowledged to the sender and
/// sent to sales.
#[utoipa::path(post, path = "/inquiries", tag = "inquiries", request_body = SubmitBody,
    responses((status = 202, body = Accepted), (status = 429, response = RateLimited)))]
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
#[derive(Serialize, ToSchema)]
pub struct InquiryView {
    id: InquiryId,
    name: String,
    #[schema(format = Email)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `true` or `false`; all when absent.
    #[param(value_type = Option<bool>)]
    handled: Option<String>,
    #[param(minimum = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    per_page: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = InquiryPage)]
struct ListView {
    total: i64,
    page: i64,
    per_page: i64,
    inquiries: Vec<InquiryView>,
}

/// Inquiries, newest first (admin).
#[utoipa::path(get, path = "/admin/inquiries", tag = "inquiries", security(("session" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = ListView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ))]
async fn list(
    state: Data<AppState>,
    current: CurrentAccount,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let paging = Paging::parse(query.page, query.per_page, 50, 200)?;
    let handled = match query.handled.as_deref() {
        None => None,
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

#[derive(Deserialize, ToSchema)]
struct MarkBody {
    handled: bool,
    note: Option<String>,
}

/// Marks an inquiry handled or not, with a note (admin).
#[utoipa::path(patch, path = "/admin/inquiries/{id}", tag = "inquiries",
    security(("session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The inquiry's id")),
    request_body = MarkBody,
    responses(
        (status = 200, body = InquiryView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ))]
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
