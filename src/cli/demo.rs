//! `masthead demo seed`: sections and sample articles (written for the
//! project) spread over the past week, so a first run has something to show.
//! Running it again adds only what is missing.

use std::sync::Arc;

use chrono::Duration;
use serde::Deserialize;

use crate::articles::markdown;
use crate::articles::model::{ArticleId, ArticleStatus, NewArticle};
use crate::articles::service::add_section;
use crate::articles::store;
use crate::articles::OnSectionAdded;
use crate::platform::clock::SystemClock;
use crate::platform::config::Settings;
use crate::platform::db;
use crate::platform::domain::Slug;
use crate::state::Core;

const SECTIONS: &[(&str, &str)] = &[
    ("patents", "Patents"),
    ("trademarks", "Trademarks"),
    ("copyright", "Copyright"),
    ("designs", "Designs"),
    ("trade-secrets", "Trade secrets"),
    ("litigation", "Litigation"),
];

const ARTICLES: &str = include_str!("articles.toml");

#[derive(Debug, Deserialize)]
struct SampleFile {
    article: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    title: String,
    standfirst: String,
    section: String,
    tags: Vec<String>,
    byline: String,
    hours_ago: i64,
    body: String,
}

#[derive(Debug, Default)]
pub struct Seeded {
    pub sections: usize,
    pub articles: usize,
}

/// Seeds what is missing and says how much it added.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    let seeded = seed(&core).await?;
    println!(
        "added {} sections and {} articles",
        seeded.sections, seeded.articles
    );
    Ok(())
}

pub async fn seed(core: &Core) -> anyhow::Result<Seeded> {
    let samples: SampleFile = toml::from_str(ARTICLES)?;
    let now = core.clock.now();
    let on_added: OnSectionAdded = Arc::new(crate::newsletter::tx::section_added);
    db::run(&core.pool, move |conn| {
        db::transaction(conn, |conn| {
            let mut seeded = Seeded::default();
            for (position, (slug, name)) in (0..).zip(SECTIONS) {
                let slug = Slug::parse(slug).map_err(|e| anyhow::anyhow!(e.message))?;
                if store::section_by_slug(conn, &slug)?.is_none() {
                    add_section(conn, &slug, name, position, now, &on_added)?;
                    seeded.sections += 1;
                }
            }
            for sample in &samples.article {
                let slug = Slug::from_title(&sample.title);
                if store::find_by_slug(conn, &slug)?.is_some() {
                    continue;
                }
                let section_slug =
                    Slug::parse(&sample.section).map_err(|e| anyhow::anyhow!(e.message))?;
                let section = store::section_by_slug(conn, &section_slug)?.ok_or_else(|| {
                    anyhow::anyhow!("sample article in unknown section {}", sample.section)
                })?;
                let published_at = (now - Duration::hours(sample.hours_ago)).naive_utc();
                let id = ArticleId::new();
                store::insert(
                    conn,
                    &NewArticle {
                        id,
                        slug: &slug,
                        title: &sample.title,
                        standfirst: &sample.standfirst,
                        body_markdown: sample.body.trim(),
                        body_html: &markdown::to_html(sample.body.trim()),
                        section_id: section.id,
                        byline: &sample.byline,
                        author_id: None,
                        status: ArticleStatus::Published,
                        published_at: Some(published_at),
                        created_at: published_at,
                        updated_at: published_at,
                    },
                )?;
                let mut tags: Vec<String> = sample.tags.iter().map(|t| t.to_lowercase()).collect();
                tags.sort();
                tags.dedup();
                store::set_tags(conn, id, &tags)?;
                seeded.articles += 1;
            }
            Ok::<_, anyhow::Error>(seeded)
        })
    })
    .await
}
