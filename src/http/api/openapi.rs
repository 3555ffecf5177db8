//! The API's description: OpenAPI 3.1, assembled from the annotations on
//! each module's handlers and the types they read and write, served at
//! `/api/openapi.json` and shown at `/api/docs`.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::responses::{
    Conflict, Forbidden, Invalid, MalformedBody, NotFound, PayloadTooLarge, RateLimited,
    Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::http::session::COOKIE_NAME;
use crate::platform::error::{AppError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "masthead",
        description = "Subscription backend of a news publisher: accounts, articles, the free \
            daily newsletter, trials, company subscriptions and the daily digest. Errors are \
            RFC 9457 `application/problem+json`; a refused field is named in `errors`.",
    ),
    nest(
        (path = "/api/v1", api = crate::http::api::accounts::Api),
        (path = "/api/v1", api = crate::http::api::access::Api),
        (path = "/api/v1", api = crate::http::api::articles::Api),
        (path = "/api/v1", api = crate::http::api::newsletter::Api),
        (path = "/api/v1", api = crate::http::api::digest::Api),
        (path = "/api/v1", api = crate::http::api::trials::Api),
        (path = "/api/v1", api = crate::http::api::inquiries::Api),
        (path = "/api/v1", api = crate::http::api::organizations::Api),
    ),
    components(
        schemas(Problem),
        responses(
        Invalid, Unauthorized, Forbidden, NotFound, Conflict, RateLimited,
        MalformedBody, UnsupportedMediaType, PayloadTooLarge, Unavailable
        ),
    ),
    modifiers(&Common),
    tags(
        (name = "accounts", description = "Registration, sessions, passwords and the account"),
        (name = "access", description = "Rights to read granted by hand"),
        (name = "articles", description = "Sections and articles"),
        (name = "newsletter", description = "The free daily newsletter"),
        (name = "digest", description = "The daily digest's runs"),
        (name = "trials", description = "Trial requests and the admins' queue"),
        (name = "inquiries", description = "Multi-user pricing requests"),
        (name = "organizations", description = "Company subscriptions and their seats"),
    ),
)]
pub struct ApiDoc;

/// Where the description and its browser are served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

/// The description at `/api/openapi.json`, and Swagger UI at `/api/docs/`
/// from files built into the binary.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        DOCS_PATH,
        web::get().to(|| async {
            HttpResponse::MovedPermanently()
                .insert_header((header::LOCATION, format!("{DOCS_PATH}/")))
                .finish()
        }),
    )
    .service(SwaggerUi::new(format!("{DOCS_PATH}/{{_:.*}}")).url(DOCUMENT_PATH, ApiDoc::openapi()));
}

/// A described path as segments, `None` where a parameter stands, and the
/// methods it is described with.
type Described = (Vec<Option<String>>, Vec<&'static str>);

/// The methods the API answers at `path`, as an `Allow` header lists them,
/// when the description has the path but a request's method matched no
/// route; `None` for a path it does not describe.
pub fn allowed_methods(path: &str) -> Option<String> {
    static TABLE: OnceLock<Vec<Described>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        ApiDoc::openapi()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                (segments, methods)
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    // As in OpenAPI, a literal segment beats a parameter: `/trials/bulk`
    // is that path's, not `/trials/{id}`'s.
    table
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
        })
        .max_by_key(|(template, _)| template.iter().filter(|t| t.is_some()).count())
        .map(|(_, methods)| methods.join(", "))
}

/// What a request no route took is answered: 405 naming the methods when
/// the description has its path, else 404.
pub async fn unrouted(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(match allowed_methods(req.path()) {
        Some(allow) => AppError::MethodNotAllowed { allow },
        None => AppError::NotFound,
    })
}

/// What every operation shares and no handler states on its own: the
/// security schemes, and the errors any JSON body or query can meet.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "The session cookie set by `POST /api/v1/sessions`. Which role an operation \
                 needs (reader, editor, admin) is in its description.",
            ))),
        );
        components.add_security_scheme(
            "bounce_hook",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`newsletter.bounce_hook_token`, for a mail server's hook",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ] {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                // Handlers are named within their module (`list`, `one`);
                // the module's tag makes the id unique in the document.
                if let (Some(tag), Some(id)) = (
                    operation.tags.as_ref().and_then(|tags| tags.first()),
                    operation.operation_id.as_ref(),
                ) {
                    operation.operation_id = Some(format!("{tag}.{id}"));
                }
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, name: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(reference(name)));
                };
                if operation.request_body.is_some() {
                    add("400", "MalformedBody");
                    add("413", "PayloadTooLarge");
                    add("415", "UnsupportedMediaType");
                    add("422", "Invalid");
                }
                // A malformed query or path id is a 422 naming it.
                if operation.parameters.iter().flatten().next().is_some() {
                    add("422", "Invalid");
                }
                add("503", "Unavailable");
            }
        }
    }
}

fn reference(name: &str) -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_response_name(name)
}
