//! The small HTML pages behind the unsubscribe link. A GET only shows a
//! button: link scanners follow links, and must not unsubscribe anyone.

use minijinja::{context, Environment};

const UNSUBSCRIBE_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }} · {{ site_name }}</title>
</head>
<body style="font-family:Georgia,serif;max-width:560px;margin:48px auto;padding:0 16px;color:#1a1a1a">
<p style="font-weight:bold;color:#8b1a1a">{{ site_name }}</p>
<h1 style="font-size:24px">{{ title }}</h1>
{% if state == "ask" %}
<p>Stop sending the daily newsletter to <strong>{{ email }}</strong>?</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" style="background:#8b1a1a;color:#fff;border:0;padding:12px 20px;font-size:15px">Unsubscribe</button>
</form>
{% elif state == "done" %}
<p>{{ email }} will get no more newsletters from us. Changed your mind? Sign up again on our site at any time.</p>
{% else %}
<p>This link is invalid or has expired. Use the link in a more recent newsletter, or reply to it and we will unsubscribe you.</p>
{% endif %}
</body>
</html>
"#;

pub struct Pages {
    templates: Environment<'static>,
    site_name: String,
}

/// What the page says.
pub enum UnsubscribePage<'a> {
    Ask { email: &'a str, action: &'a str },
    Done { email: &'a str },
    InvalidLink,
}

impl Pages {
    pub fn new(site_name: &str) -> anyhow::Result<Self> {
        let mut templates = Environment::new();
        // The `.html` name turns on HTML escaping.
        templates.add_template("unsubscribe.html", UNSUBSCRIBE_PAGE)?;
        Ok(Self {
            templates,
            site_name: site_name.to_owned(),
        })
    }

    pub fn unsubscribe(&self, page: &UnsubscribePage<'_>) -> Result<String, minijinja::Error> {
        let ctx = match page {
            UnsubscribePage::Ask { email, action } => context! {
                state => "ask", title => "Unsubscribe", email, action,
            },
            UnsubscribePage::Done { email } => context! {
                state => "done", title => "You are unsubscribed", email,
            },
            UnsubscribePage::InvalidLink => context! {
                state => "invalid", title => "This link does not work",
            },
        };
        self.templates
            .get_template("unsubscribe.html")?
            .render(context! { site_name => &self.site_name, ..ctx })
    }
}
