//! The newsroom console under `/admin`: the pages staff work in all day.
//! Each area calls the same service as its JSON twin, and the service
//! decides who may (admins, or editors for articles and sections); every
//! change is written to the audit trail by the service that makes it.

pub mod accounts;
pub mod articles;
pub mod audit;
pub mod dashboard;
pub mod digests;
pub mod inquiries;
pub mod organizations;
pub mod subscribers;
pub mod trials;

use actix_web::web;

/// The console's layout (its own navigation) and each area's templates.
pub const TEMPLATES: &[(&str, &str)] = &[(
    "admin_layout.html",
    include_str!("../templates/admin_layout.html"),
)];

/// Every template of the console.
pub fn templates() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    [
        TEMPLATES,
        accounts::TEMPLATES,
        articles::TEMPLATES,
        audit::TEMPLATES,
        dashboard::TEMPLATES,
        digests::TEMPLATES,
        inquiries::TEMPLATES,
        organizations::TEMPLATES,
        subscribers::TEMPLATES,
        trials::TEMPLATES,
    ]
    .into_iter()
    .flatten()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(dashboard::routes)
        .configure(trials::routes)
        .configure(digests::routes)
        .configure(inquiries::routes)
        .configure(organizations::routes)
        .configure(subscribers::routes)
        .configure(accounts::routes)
        .configure(articles::routes)
        .configure(audit::routes);
}
