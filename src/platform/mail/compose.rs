//! Renders one message type into subject, text and HTML, ready for the outbox.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::Mailbox;
use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::platform::config::MailSettings;
use crate::platform::domain::EmailAddress;

crate::text_enum! {
    /// Which sender a message goes out from: mailbox providers want
    /// transactional mail and newsletters kept apart. Newsletter mail is
    /// also checked against the suppression list when it is delivered.
    pub enum Stream {
        Transactional => "transactional",
        Newsletter => "newsletter",
    }
}

/// One kind of message. Its fields are the template's context; the template
/// is `email_templates/{TEMPLATE}.html` and `.txt`.
pub trait Email: Serialize {
    const TEMPLATE: &'static str;
    const STREAM: Stream = Stream::Transactional;

    fn subject(&self, site_name: &str) -> String;
}

/// A rendered message, as the outbox stores it.
#[derive(Debug, Clone)]
pub struct ComposedEmail {
    pub template: &'static str,
    pub from: String,
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub stream: Stream,
    /// Extra headers (List-Unsubscribe and the like), added on delivery.
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("rendering template {template}")]
    Template {
        template: String,
        #[source]
        source: minijinja::Error,
    },
}

/// Inline styles for the HTML parts, exposed to templates as `style`. Mail
/// clients ignore or strip `<style>` blocks, so every element carries its
/// own `style` attribute; keeping them here keeps the templates readable.
const STYLES_FILE: &str = "styles.json";
const BUILT_IN_STYLES: &str = include_str!("../../../email_templates/styles.json");

/// The templates shipped with the binary; `mail.templates_dir` replaces them.
const BUILT_IN_TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../../email_templates/base.html"),
    ),
    (
        "base.txt",
        include_str!("../../../email_templates/base.txt"),
    ),
    (
        "verify_email.html",
        include_str!("../../../email_templates/verify_email.html"),
    ),
    (
        "verify_email.txt",
        include_str!("../../../email_templates/verify_email.txt"),
    ),
    (
        "account_exists.html",
        include_str!("../../../email_templates/account_exists.html"),
    ),
    (
        "account_exists.txt",
        include_str!("../../../email_templates/account_exists.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../../email_templates/password_reset.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../../../email_templates/password_reset.txt"),
    ),
    (
        "password_changed.html",
        include_str!("../../../email_templates/password_changed.html"),
    ),
    (
        "password_changed.txt",
        include_str!("../../../email_templates/password_changed.txt"),
    ),
    (
        "trial_received.html",
        include_str!("../../../email_templates/trial_received.html"),
    ),
    (
        "trial_received.txt",
        include_str!("../../../email_templates/trial_received.txt"),
    ),
    (
        "trial_approved.html",
        include_str!("../../../email_templates/trial_approved.html"),
    ),
    (
        "trial_approved.txt",
        include_str!("../../../email_templates/trial_approved.txt"),
    ),
    (
        "trial_rejected.html",
        include_str!("../../../email_templates/trial_rejected.html"),
    ),
    (
        "trial_rejected.txt",
        include_str!("../../../email_templates/trial_rejected.txt"),
    ),
    (
        "trial_reminder.html",
        include_str!("../../../email_templates/trial_reminder.html"),
    ),
    (
        "trial_reminder.txt",
        include_str!("../../../email_templates/trial_reminder.txt"),
    ),
    (
        "trial_ended.html",
        include_str!("../../../email_templates/trial_ended.html"),
    ),
    (
        "trial_ended.txt",
        include_str!("../../../email_templates/trial_ended.txt"),
    ),
    (
        "admin_trial_summary.html",
        include_str!("../../../email_templates/admin_trial_summary.html"),
    ),
    (
        "admin_trial_summary.txt",
        include_str!("../../../email_templates/admin_trial_summary.txt"),
    ),
    (
        "newsletter_confirm.html",
        include_str!("../../../email_templates/newsletter_confirm.html"),
    ),
    (
        "newsletter_confirm.txt",
        include_str!("../../../email_templates/newsletter_confirm.txt"),
    ),
    (
        "newsletter_welcome.html",
        include_str!("../../../email_templates/newsletter_welcome.html"),
    ),
    (
        "newsletter_welcome.txt",
        include_str!("../../../email_templates/newsletter_welcome.txt"),
    ),
    (
        "inquiry_received.html",
        include_str!("../../../email_templates/inquiry_received.html"),
    ),
    (
        "inquiry_received.txt",
        include_str!("../../../email_templates/inquiry_received.txt"),
    ),
    (
        "inquiry_sales.html",
        include_str!("../../../email_templates/inquiry_sales.html"),
    ),
    (
        "inquiry_sales.txt",
        include_str!("../../../email_templates/inquiry_sales.txt"),
    ),
    (
        "digest.html",
        include_str!("../../../email_templates/digest.html"),
    ),
    (
        "digest.txt",
        include_str!("../../../email_templates/digest.txt"),
    ),
    (
        "company_join_link.html",
        include_str!("../../../email_templates/company_join_link.html"),
    ),
    (
        "company_join_link.txt",
        include_str!("../../../email_templates/company_join_link.txt"),
    ),
    (
        "company_seats_taken.html",
        include_str!("../../../email_templates/company_seats_taken.html"),
    ),
    (
        "company_seats_taken.txt",
        include_str!("../../../email_templates/company_seats_taken.txt"),
    ),
    (
        "company_seats_full.html",
        include_str!("../../../email_templates/company_seats_full.html"),
    ),
    (
        "company_seats_full.txt",
        include_str!("../../../email_templates/company_seats_full.txt"),
    ),
    (
        "company_no_match.html",
        include_str!("../../../email_templates/company_no_match.html"),
    ),
    (
        "company_no_match.txt",
        include_str!("../../../email_templates/company_no_match.txt"),
    ),
];

pub struct Composer {
    templates: Environment<'static>,
    from: Mailbox,
    newsletter_from: Mailbox,
    site_name: String,
    public_url: String,
}

impl Composer {
    pub fn new(settings: &MailSettings, public_url: &str) -> anyhow::Result<Arc<Self>> {
        let mut templates = Environment::new();
        let styles = match &settings.templates_dir {
            Some(dir) => {
                templates.set_loader(minijinja::path_loader(dir));
                let path = dir.join(STYLES_FILE);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
            }
            None => {
                for (name, source) in BUILT_IN_TEMPLATES {
                    templates
                        .add_template(name, source)
                        .with_context(|| format!("built-in email template {name}"))?;
                }
                BUILT_IN_STYLES.to_owned()
            }
        };
        let styles: BTreeMap<String, String> = serde_json::from_str(&styles)
            .context("email styles are not a JSON object of strings")?;
        templates.add_global("style", Value::from_serialize(&styles));
        let from = settings
            .from
            .parse()
            .with_context(|| format!("mail.from `{}` is not a mailbox", settings.from))?;
        let newsletter_from = settings.newsletter_from.parse().with_context(|| {
            format!(
                "mail.newsletter_from `{}` is not a mailbox",
                settings.newsletter_from
            )
        })?;
        Ok(Arc::new(Self {
            templates,
            from,
            newsletter_from,
            site_name: settings.site_name.clone(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }))
    }

    /// A link into the public site, for use in a message.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{}", self.public_url, path_and_query)
    }

    pub fn site_name(&self) -> &str {
        &self.site_name
    }

    /// The sender of newsletter and digest mail.
    pub fn newsletter_from(&self) -> &Mailbox {
        &self.newsletter_from
    }

    /// Subject, text and HTML of one message, without a recipient.
    pub fn render<E: Email>(&self, email: &E) -> Result<(String, String, String), ComposeError> {
        let subject = email.subject(&self.site_name);
        let ctx = context! {
            site_name => &self.site_name,
            public_url => &self.public_url,
            subject => &subject,
            ..Value::from_serialize(email)
        };
        let render = |suffix: &str| {
            let name = format!("{}.{suffix}", E::TEMPLATE);
            self.templates
                .get_template(&name)
                .and_then(|template| template.render(&ctx))
                .map_err(|source| ComposeError::Template {
                    template: name,
                    source,
                })
        };
        let text = render("txt")?;
        let html = render("html")?;
        Ok((subject, text, html))
    }

    pub fn compose<E: Email>(
        &self,
        to: &EmailAddress,
        email: &E,
    ) -> Result<ComposedEmail, ComposeError> {
        let (subject, text, html) = self.render(email)?;
        let from = match E::STREAM {
            Stream::Transactional => &self.from,
            Stream::Newsletter => &self.newsletter_from,
        };
        Ok(ComposedEmail {
            template: E::TEMPLATE,
            from: from.to_string(),
            to: to.clone(),
            subject,
            text,
            html,
            stream: E::STREAM,
            headers: BTreeMap::new(),
        })
    }
}

/// A header written as given, never folded: RFC 8058 receivers parse
/// List-Unsubscribe and List-Unsubscribe-Post as one line. Only printable
/// ASCII is written this way (so no line break can inject a header);
/// anything else is encoded and folded as usual.
pub fn unfolded(name: HeaderName, value: String) -> HeaderValue {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        HeaderValue::dangerous_new_pre_encoded(name, value.clone(), value)
    } else {
        HeaderValue::new(name, value)
    }
}
