//! Rendering once per variant. A variant (the sections a message shows) is
//! rendered by the template engine once per run; what differs per
//! subscriber (the greeting and the two links) is left as marked slots,
//! filled in by plain string concatenation for each message.

use serde::Serialize;

use crate::mail::{Email, Stream};

/// A per-subscriber value in a rendered variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Greeting,
    Preferences,
    Unsubscribe,
}

impl Slot {
    const ALL: [Slot; 3] = [Slot::Greeting, Slot::Preferences, Slot::Unsubscribe];

    /// Letters and digits only, so that HTML escaping leaves it intact.
    fn marker(self) -> &'static str {
        match self {
            Self::Greeting => "Qx7SlotGreetingQx7",
            Self::Preferences => "Qx7SlotPreferencesQx7",
            Self::Unsubscribe => "Qx7SlotUnsubscribeQx7",
        }
    }
}

const MARKER_START: &str = "Qx7Slot";

/// The digest as the template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    pub date_label: String,
    pub quiet: bool,
    pub sections: Vec<SectionBlock>,
    pub greeting: String,
    pub preferences_link: String,
    pub unsubscribe_link: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionBlock {
    pub slug: String,
    pub name: String,
    pub articles: Vec<Headline>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    pub title: String,
    pub standfirst: String,
    pub link: String,
}

impl Email for Digest {
    const TEMPLATE: &'static str = "digest";
    const STREAM: Stream = Stream::Newsletter;

    fn subject(&self, site_name: &str) -> String {
        match self.sections.first().and_then(|s| s.articles.first()) {
            Some(lead) if !self.quiet => {
                format!("{site_name} Daily, {}: {}", self.date_label, lead.title)
            }
            _ => format!("{site_name} Daily, {}", self.date_label),
        }
    }
}

impl Digest {
    /// The same digest with markers where each subscriber's values go.
    pub fn with_slots(mut self) -> Self {
        self.greeting = Slot::Greeting.marker().to_owned();
        self.preferences_link = Slot::Preferences.marker().to_owned();
        self.unsubscribe_link = Slot::Unsubscribe.marker().to_owned();
        self
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Slot(Slot),
}

/// A rendered part, cut at its slots.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    fixed_len: usize,
}

impl Template {
    pub fn parse(rendered: &str) -> Self {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        while let Some(at) = rest.find(MARKER_START) {
            let slot = Slot::ALL
                .into_iter()
                .find(|slot| rest[at..].starts_with(slot.marker()));
            match slot {
                Some(slot) => {
                    pieces.push(Piece::Text(rest[..at].to_owned()));
                    pieces.push(Piece::Slot(slot));
                    rest = &rest[at + slot.marker().len()..];
                }
                None => {
                    let end = at + MARKER_START.len();
                    pieces.push(Piece::Text(rest[..end].to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        pieces.push(Piece::Text(rest.to_owned()));
        let fixed_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Slot(_) => 0,
            })
            .sum();
        Self { pieces, fixed_len }
    }

    /// The part for one subscriber; `html` escapes the values.
    pub fn fill(&self, values: &Personal<'_>, html: bool) -> String {
        let mut out = String::with_capacity(self.fixed_len + 512);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot(slot) => {
                    let value = values.get(*slot);
                    if html {
                        escape_html(value, &mut out);
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// What differs from one subscriber to the next.
#[derive(Debug)]
pub struct Personal<'a> {
    pub greeting: &'a str,
    pub preferences: &'a str,
    pub unsubscribe: &'a str,
}

impl Personal<'_> {
    fn get(&self, slot: Slot) -> &str {
        match slot {
            Slot::Greeting => self.greeting,
            Slot::Preferences => self.preferences,
            Slot::Unsubscribe => self.unsubscribe,
        }
    }
}

fn escape_html(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// One variant, rendered: the subject and both parts with their slots.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: Template,
    pub html: Template,
}

pub fn greeting(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("Good morning, {name},"),
        None => "Good morning,".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_filled_and_escaped_only_in_html() {
        let template = Template::parse(&format!(
            "<p>{}</p><a href=\"{}\">x</a> Qx7Slot stays",
            Slot::Greeting.marker(),
            Slot::Unsubscribe.marker()
        ));
        let values = Personal {
            greeting: "Good morning, Ada & <Bob>,",
            preferences: "p",
            unsubscribe: "https://x/u?a=1&b=2",
        };
        assert_eq!(
            template.fill(&values, true),
            "<p>Good morning, Ada &amp; &lt;Bob&gt;,</p><a href=\"https://x/u?a=1&amp;b=2\">x</a> Qx7Slot stays"
        );
        assert_eq!(
            template.fill(&values, false),
            "<p>Good morning, Ada & <Bob>,</p><a href=\"https://x/u?a=1&b=2\">x</a> Qx7Slot stays"
        );
    }
}
