//! Builds the application: state, middleware, routes, and the worker.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{self, Data};
use actix_web::{App, HttpMessage, HttpResponse};
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::access::{self, AccessService};
use crate::accounts::{self, AccountService};
use crate::articles::{self, ArticleService};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::db::{self, Pool};
use crate::digest::{self, DigestService};
use crate::error::AppError;
use crate::jobs::Worker;
use crate::mail::Composer;
use crate::newsletter::links::LinkSigner;
use crate::newsletter::{self, NewsletterService};
use crate::trials::{self, TrialService};

/// What every handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    pub clock: SharedClock,
    pub accounts: AccountService,
    pub access: AccessService,
    pub articles: ArticleService,
    pub trials: TrialService,
    pub newsletter: NewsletterService,
    pub digest: DigestService,
    pub pages: newsletter::pages::Pages,
}

/// The parts both `serve` and `worker` start from: settings, a migrated
/// database, the clock, and the mail composer.
#[derive(Clone)]
pub struct Core {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    pub clock: SharedClock,
    pub composer: Arc<Composer>,
    pub links: Arc<LinkSigner>,
}

impl Core {
    pub async fn start(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let db_settings = settings.database.clone();
        let pool = tokio::task::spawn_blocking(move || -> anyhow::Result<Pool> {
            let pool = db::connect(&db_settings)?;
            let mut conn = pool.get().context("taking a connection to migrate")?;
            let applied = db::migrate(&mut conn)?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "database migrated");
            }
            Ok(pool)
        })
        .await
        .context("database start-up task")??;
        let composer = Composer::new(&settings.mail, settings.server.public_url())?;
        let links = Arc::new(LinkSigner::new(crate::secret::site_key(&settings.auth)?));
        Ok(Self {
            settings: Arc::new(settings),
            pool,
            clock,
            composer,
            links,
        })
    }
}

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
        let accounts = AccountService::new(
            core.pool.clone(),
            Arc::clone(&core.clock),
            Arc::clone(&core.composer),
            settings.auth.clone(),
        )?;
        let newsletter = NewsletterService::new(
            core.pool.clone(),
            Arc::clone(&core.clock),
            Arc::clone(&core.composer),
            settings.newsletter.clone(),
            Arc::clone(&core.links),
        );
        let digest = DigestService::new(&core);
        let state = Data::new(AppState {
            settings: Arc::clone(&settings),
            pool: core.pool.clone(),
            clock: Arc::clone(&core.clock),
            accounts,
            access: AccessService::new(core.pool.clone(), Arc::clone(&core.clock)),
            articles: ArticleService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                settings.articles.clone(),
            ),
            trials: TrialService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                settings.trials.clone(),
            ),
            newsletter,
            digest,
            pages: newsletter::pages::Pages::new(&settings.mail.site_name)?,
        });
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let mut server = actix_web::HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    AppError::field("query", "invalid", error.to_string()).into()
                }))
                .configure(routes)
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(AppError::NotFound)
                }))
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
                .wrap(TracingLogger::default())
        })
        .listen(listener)?
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
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

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::ops::routes)
        .configure(newsletter::http::pages)
        .service(
            web::scope("/api/v1")
                .configure(accounts::http::routes)
                .configure(access::http::routes)
                .configure(articles::http::routes)
                .configure(newsletter::http::routes)
                .configure(digest::http::routes)
                .configure(trials::http::routes),
        );
}
