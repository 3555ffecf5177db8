//! The services of the process, built over the platform's parts: what the
//! handlers, the worker and the commands reach. It stands above the
//! capabilities and the flows, and below `http/`, `jobs/` and `app.rs`.

use std::sync::Arc;

use crate::access::service::KeptDecisions;
use crate::access::AccessService;
use crate::accounts::service::KeptSessions;
use crate::accounts::AccountService;
use crate::articles::ArticleService;
use crate::articles::ReaderCache;
use crate::articles::Readers;
use crate::digest::DigestService;
use crate::inquiries::InquiryService;
use crate::newsletter::{LinkSigner, NewsletterService};
use crate::organizations::OrganizationService;
use crate::platform::audit::AuditService;
use crate::platform::base::Base;
use crate::platform::clock::SharedClock;
use crate::platform::config::Settings;
use crate::platform::db::Pool;
use crate::platform::mail::service::OutboxService;
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
            accounts: core.account_service()?,
            access: AccessService::new(core.pool.clone(), Arc::clone(&core.clock)),
            audit: AuditService::new(core.pool.clone()),
            outbox: OutboxService::new(core.pool.clone()),
            articles: core.article_service(),
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
                core.suppressions.clone(),
            ),
            digest: DigestService::new(&core.base),
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

/// The parts both `serve` and `worker` start from: the platform's, and
/// what capabilities share between their services and the worker.
#[derive(Clone)]
pub struct Core {
    pub base: Base,
    pub links: Arc<LinkSigner>,
    /// Published listings and articles, shared by the handlers and the
    /// worker that publishes scheduled ones.
    pub article_cache: Arc<ReaderCache>,
    /// The accounts of live sessions, and what each may read.
    pub sessions: Arc<KeptSessions>,
    pub decisions: Arc<KeptDecisions>,
}

/// The platform's parts are reached as `core.pool`, `core.clock`…
impl std::ops::Deref for Core {
    type Target = Base;

    fn deref(&self) -> &Base {
        &self.base
    }
}

impl Core {
    pub async fn start(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let base = Base::start(settings, clock).await?;
        let settings = &base.settings;
        let links = Arc::new(LinkSigner::new(base.site_key.clone()));
        let article_cache = Arc::new(ReaderCache::new(std::time::Duration::from_millis(
            settings.articles.cache_recheck_ms,
        )));
        let session_recheck = std::time::Duration::from_millis(settings.auth.session_recheck_ms);
        let sessions = Arc::new(crate::accounts::service::kept_sessions(session_recheck));
        let decisions = Arc::new(crate::access::service::kept_decisions(session_recheck));
        Ok(Self {
            base,
            links,
            article_cache,
            sessions,
            decisions,
        })
    }

    /// Accounts, whose registrations reach the newsletter.
    pub fn account_service(&self) -> anyhow::Result<AccountService> {
        AccountService::new(
            self.pool.clone(),
            Arc::clone(&self.clock),
            Arc::clone(&self.composer),
            self.settings.auth.clone(),
            Arc::clone(&self.abuse),
            Arc::clone(&self.sessions),
            Arc::new(crate::newsletter::tx::account_registered),
        )
    }

    /// Articles, read through the shared cache and the kept sessions and
    /// decisions, whose new sections reach the newsletter.
    fn article_service(&self) -> ArticleService {
        ArticleService::new(
            self.pool.clone(),
            Arc::clone(&self.clock),
            self.settings.articles.clone(),
            Arc::clone(&self.article_cache),
            Readers {
                sessions: Arc::clone(&self.sessions),
                decisions: Arc::clone(&self.decisions),
            },
            Arc::new(crate::newsletter::tx::section_added),
        )
    }
}
