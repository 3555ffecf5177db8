//! The composition root: middleware, the routes of every module, and the
//! worker. Nothing imports it but the CLI that starts it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{
    Server, ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse,
};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{self, Data};
use actix_web::{App, HttpMessage};
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::http::api;
use crate::http::pages::Site;
use crate::jobs::Worker;
use crate::platform::clock::{SharedClock, SystemClock};
use crate::platform::config::{DatabaseSettings, Settings};
use crate::platform::error::AppError;
use crate::state::{AppState, Core};

/// The HTTP server and, unless disabled, the in-process worker.
pub struct Application {
    port: u16,
    server: Server,
    worker: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let core = Core::start(settings, clock).await?;
        let settings = Arc::clone(&core.settings);
        let state = Data::new(AppState::new(&core)?);
        let site = crate::http::pages::site_data(Site::new(
            &settings.mail.site_name,
            settings.server.public_url(),
            core.site_key.clone(),
        )?);
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let mut server = actix_web::HttpServer::new(move || app(state.clone(), site.clone()))
            .listen(listener)?
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
            .worker_max_blocking_threads(blocking_threads(&settings.database));
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let worker = if settings.worker.enabled {
            Some(Worker::new(&core)?)
        } else {
            None
        };
        let server = server.run();
        let worker = worker.map(|worker| {
            let (stop, stopped) = watch::channel(false);
            (stop, tokio::spawn(worker.run(stopped)))
        });
        Ok(Self {
            port,
            server,
            worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server gracefully (in-flight requests finish); the worker
    /// then stops after its current batch.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        if let Some((stop, worker)) = self.worker {
            let _ = stop.send(true);
            worker.await.context("worker task")?;
        }
        served.context("HTTP server")
    }
}

/// The application each HTTP worker thread serves. A later layer wraps
/// the earlier: the request's span is outermost, so that it covers the
/// refusals, and the pages' headers are set on every response, a refusal's
/// too.
fn app(
    state: Data<AppState>,
    site: Data<Site>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    routed(state, site)
        .wrap_fn(|req, srv| {
            let call = crate::http::pages::check_origin(req).map(|req| srv.call(req));
            async move {
                let response = match call {
                    Ok(call) => call.await?,
                    Err(refused) => *refused,
                };
                Ok(crate::http::pages::finish(response))
            }
        })
        .wrap_fn(|req, srv| {
            let request_id = req.extensions().get::<RequestId>().copied();
            let response = srv.call(req);
            async move {
                let mut response = response.await?;
                if let Some(id) = request_id {
                    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
                        response
                            .headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), value);
                    }
                }
                Ok(response)
            }
        })
        .wrap(TracingLogger::<crate::http::telemetry::RedactingRootSpan>::new())
}

/// The shared data and the routes, behind the refusal of a URL that holds
/// `%00`.
fn routed(
    state: Data<AppState>,
    site: Data<Site>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(site)
        .app_data(web::QueryConfig::default().error_handler(|error, _| {
            AppError::field("query", "invalid", error.to_string()).into()
        }))
        .configure(routes)
        .default_service(web::to(api::openapi::unrouted))
        .wrap_fn(|req, srv| {
            // No path or query means a NUL character, and
            // PostgreSQL cannot compare text that holds one.
            let refused =
                req.uri().to_string().contains("%00").then(|| {
                    AppError::field("query", "invalid_characters", "a URL cannot hold %00")
                });
            let call = match refused {
                None => Ok(srv.call(req)),
                Some(error) => Err(req.error_response(error)),
            };
            async move {
                match call {
                    Ok(call) => call.await,
                    Err(refused) => Ok(refused),
                }
            }
        })
}

/// A request is matched against each route in turn, and a route with a
/// `{segment}` runs a regular expression (actix-router allocates its
/// captures, whether it matches or not; that was a twentieth of a sign-up's
/// CPU). A scope is matched by its prefix alone: the API scope comes before
/// the API browser's and the pages' patterns, so that a JSON request never
/// runs them; inside it the admins' routes and the articles (nearly all the
/// patterns) sit in scopes of their own, so that a reader's request runs
/// only the patterns of its own route.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(api::ops::routes).service(
        web::scope("/api/v1")
            .service(
                web::scope("/admin")
                    .configure(api::accounts::admin_routes)
                    .configure(api::access::admin_routes)
                    .configure(api::newsletter::admin_routes)
                    .configure(api::digest::admin_routes)
                    .configure(api::trials::admin_routes)
                    .configure(api::inquiries::admin_routes)
                    .configure(api::organizations::admin_routes),
            )
            .configure(api::articles::routes)
            .configure(api::accounts::routes)
            .configure(api::newsletter::routes)
            .configure(api::trials::routes)
            .configure(api::inquiries::routes)
            .configure(api::organizations::routes),
    );
    cfg.configure(api::openapi::routes)
        .configure(crate::http::pages::routes);
}

/// Blocking threads of a runtime. Nearly all they run is database work (the
/// rest: writing mail to a folder), and no more of it can run at once than
/// the pool has connections. Left at tokio's default (hundreds), a burst of
/// requests started a thread each to wait on the pool, and the memory the
/// threads had allocated stayed with the process.
pub fn blocking_threads(database: &DatabaseSettings) -> usize {
    usize::try_from(database.pool_size)
        .unwrap_or(usize::MAX)
        .max(1)
}
