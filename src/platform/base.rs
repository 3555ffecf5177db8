//! The parts every capability is built over, and that `serve`, `worker`
//! and the commands start from: settings, a migrated database, the clock,
//! and mail (its composer, signer, return paths and suppression list).

use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;

use crate::platform::abuse::AbuseGuard;
use crate::platform::clock::SharedClock;
use crate::platform::config::Settings;
use crate::platform::db::{self, Pool};
use crate::platform::mail::suppression::{BouncePolicy, SuppressionKey, SuppressionList};
use crate::platform::mail::{Composer, DkimSigner, ReturnPaths};

#[derive(Clone)]
pub struct Base {
    pub settings: Arc<Settings>,
    pub pool: Pool,
    pub clock: SharedClock,
    pub composer: Arc<Composer>,
    /// Signs links, form tokens and flash messages.
    pub site_key: SecretString,
    /// The limits on anonymous forms, shared by the services they reach.
    pub abuse: Arc<AbuseGuard>,
    /// Signs every outgoing message, when `[mail.dkim]` is set.
    pub dkim: Option<Arc<DkimSigner>>,
    /// The envelope senders that attribute bounces to their message.
    pub return_paths: Arc<ReturnPaths>,
    pub suppressions: SuppressionList,
}

impl Base {
    pub async fn start(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let pool = migrated(&settings).await?;
        let composer = Composer::new(&settings.mail, settings.server.public_url())?;
        let site_key = crate::platform::secret::site_key(&settings.auth)?;
        let suppressions = SuppressionList::new(
            SuppressionKey::derive(&site_key),
            BouncePolicy::from(&settings.newsletter),
        );
        rekey(&pool, &suppressions).await?;
        let abuse = Arc::new(AbuseGuard::new(&settings.abuse, Arc::clone(&clock)));
        let dkim = DkimSigner::from_settings(settings.mail.dkim.as_ref())?.map(Arc::new);
        let return_paths = Arc::new(ReturnPaths::new(
            &site_key,
            settings.mail.bounce_domain.clone(),
        ));
        Ok(Self {
            settings: Arc::new(settings),
            pool,
            clock,
            composer,
            site_key,
            abuse,
            dkim,
            return_paths,
            suppressions,
        })
    }
}

async fn migrated(settings: &Settings) -> anyhow::Result<Pool> {
    let db_settings = settings.database.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Pool> {
        let pool = db::connect(&db_settings)?;
        let mut conn = pool.get().context("taking a connection to migrate")?;
        let applied = db::migrate(&mut conn)?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "database migrated");
        }
        Ok(pool)
    })
    .await
    .context("database start-up task")?
}

/// Keys the suppressions written before their hashes were keyed.
async fn rekey(pool: &Pool, suppressions: &SuppressionList) -> anyhow::Result<()> {
    let list = suppressions.clone();
    let rekeyed = db::run(pool, move |conn| {
        list.rekey(conn).map_err(db::StorageError::from)
    })
    .await
    .context("keying the suppression list")?;
    if rekeyed > 0 {
        tracing::info!(rekeyed, "suppression hashes keyed");
    }
    Ok(())
}
