//! The shared state of the process: settings, database, clock, mail
//! composer and the services built over them. It sits below every
//! capability, so handlers, the worker and the CLI reach it without going
//! through the composition root (`app.rs`).

use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;

use crate::access::service::KeptDecisions;
use crate::access::AccessService;
use crate::accounts::service::KeptSessions;
use crate::accounts::AccountService;
use crate::articles::ArticleService;
use crate::articles::ReaderCache;
use crate::articles::Readers;
use crate::digest::DigestService;
use crate::inquiries::InquiryService;
use crate::newsletter::links::LinkSigner;
use crate::newsletter::NewsletterService;
use crate::organizations::OrganizationService;
use crate::platform::abuse::AbuseGuard;
use crate::platform::audit::AuditService;
use crate::platform::clock::SharedClock;
use crate::platform::config::Settings;
use crate::platform::db::{self, Pool};
use crate::platform::mail::service::OutboxService;
use crate::platform::mail::{Composer, DkimSigner, ReturnPaths};
use crate::trials::TrialService;

/// What every handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    pub clock: SharedClock,
    pub accounts: AccountService,
    pub access: AccessService,
    pub audit: AuditService,
    pub outbox: OutboxService,
    pub articles: ArticleService,
    pub trials: TrialService,
    pub newsletter: NewsletterService,
    pub digest: DigestService,
    pub inquiries: InquiryService,
    pub organizations: OrganizationService,
}

impl AppState {
    /// Builds every service over the parts of `core`.
    pub fn new(core: &Core) -> anyhow::Result<Self> {
        let settings = Arc::clone(&core.settings);
        Ok(Self {
            accounts: AccountService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                settings.auth.clone(),
                Arc::clone(&core.abuse),
                Arc::clone(&core.sessions),
            )?,
            access: AccessService::new(core.pool.clone(), Arc::clone(&core.clock)),
            audit: AuditService::new(core.pool.clone()),
            outbox: OutboxService::new(core.pool.clone()),
            articles: ArticleService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                settings.articles.clone(),
                Arc::clone(&core.article_cache),
                Readers {
                    sessions: Arc::clone(&core.sessions),
                    decisions: Arc::clone(&core.decisions),
                },
            ),
            trials: TrialService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                settings.trials.clone(),
                Arc::clone(&core.abuse),
            ),
            newsletter: NewsletterService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                settings.newsletter.clone(),
                Arc::clone(&core.links),
                Arc::clone(&core.abuse),
            ),
            digest: DigestService::new(core),
            inquiries: InquiryService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                &settings.mail.sales_email,
                Arc::clone(&core.abuse),
            )?,
            organizations: OrganizationService::new(
                core.pool.clone(),
                Arc::clone(&core.clock),
                Arc::clone(&core.composer),
                settings.mail.sales_email.clone(),
                Arc::clone(&core.abuse),
            ),
            pool: core.pool.clone(),
            clock: Arc::clone(&core.clock),
            settings,
        })
    }
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
    /// Signs links, form tokens and flash messages.
    pub site_key: SecretString,
    /// The limits on anonymous forms, shared by the services they reach.
    pub abuse: Arc<AbuseGuard>,
    /// Signs every outgoing message, when `[mail.dkim]` is set.
    pub dkim: Option<Arc<DkimSigner>>,
    /// The envelope senders that attribute bounces to their message.
    pub return_paths: Arc<ReturnPaths>,
    /// Published listings and articles, shared by the handlers and the
    /// worker that publishes scheduled ones.
    pub article_cache: Arc<ReaderCache>,
    /// The accounts of live sessions, and what each may read.
    pub sessions: Arc<KeptSessions>,
    pub decisions: Arc<KeptDecisions>,
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
        let site_key = crate::platform::secret::site_key(&settings.auth)?;
        let links = Arc::new(LinkSigner::new(site_key.clone()));
        let key = links.suppression_key().clone();
        let rekeyed = db::run(&pool, move |conn| {
            crate::newsletter::service::rekey_suppressions(conn, &key)
                .map_err(db::StorageError::from)
        })
        .await
        .context("keying the suppression list")?;
        if rekeyed > 0 {
            tracing::info!(rekeyed, "suppression hashes keyed");
        }
        let abuse = Arc::new(AbuseGuard::new(&settings.abuse, Arc::clone(&clock)));
        let dkim = DkimSigner::from_settings(settings.mail.dkim.as_ref())?.map(Arc::new);
        let return_paths = Arc::new(ReturnPaths::new(
            &site_key,
            settings.mail.bounce_domain.clone(),
        ));
        let article_cache = Arc::new(ReaderCache::new(std::time::Duration::from_millis(
            settings.articles.cache_recheck_ms,
        )));
        let session_recheck = std::time::Duration::from_millis(settings.auth.session_recheck_ms);
        let sessions = Arc::new(crate::accounts::service::kept_sessions(session_recheck));
        let decisions = Arc::new(crate::access::service::kept_decisions(session_recheck));
        Ok(Self {
            settings: Arc::new(settings),
            pool,
            clock,
            composer,
            links,
            site_key,
            abuse,
            dkim,
            return_paths,
            article_cache,
            sessions,
            decisions,
        })
    }
}
