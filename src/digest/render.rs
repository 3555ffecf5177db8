//! Rendering once per variant. A variant (the sections a message shows) is
//! rendered by the template engine once per run; what differs per
//! subscriber (the greeting and the two links) is left as marked slots.
//! The fixed text between the slots is also transfer-encoded once
//! (quoted-printable, CRLF line ends), so a message is put together by
//! concatenating bytes: only the slot values are encoded per subscriber.

use serde::Serialize;

use crate::platform::mail::{Email, Stream};

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
    /// Quoted-printable, ready to send.
    Encoded(Vec<u8>),
    Slot(Slot),
}

/// A rendered part, cut at its slots, its fixed text already encoded.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    fixed_len: usize,
}

/// A quoted-printable line break that decodes to nothing. Every piece is
/// encoded on its own, from the start of a line: a soft break around each
/// slot keeps lines within the 76 characters wherever the slots fall.
const SOFT_BREAK: &[u8] = b"=\r\n";

fn encode(text: &str) -> Vec<u8> {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    quoted_printable::encode(crlf)
}

impl Template {
    pub fn parse(rendered: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = rendered;
        while let Some(at) = rest.find(MARKER_START) {
            let slot = Slot::ALL
                .into_iter()
                .find(|slot| rest[at..].starts_with(slot.marker()));
            match slot {
                Some(slot) => {
                    text.push_str(&rest[..at]);
                    pieces.push(Piece::Encoded(encode(&std::mem::take(&mut text))));
                    pieces.push(Piece::Slot(slot));
                    rest = &rest[at + slot.marker().len()..];
                }
                None => {
                    let end = at + MARKER_START.len();
                    text.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
            }
        }
        text.push_str(rest);
        pieces.push(Piece::Encoded(encode(&text)));
        let fixed_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Encoded(bytes) => bytes.len(),
                Piece::Slot(_) => 0,
            })
            .sum();
        Self { pieces, fixed_len }
    }

    /// The encoded part for one subscriber; `html` escapes the values.
    pub fn fill(&self, values: &Personal<'_>, html: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.fixed_len + 1024);
        let mut value = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Encoded(bytes) => out.extend_from_slice(bytes),
                Piece::Slot(slot) => {
                    value.clear();
                    if html {
                        escape_html(values.get(*slot), &mut value);
                    } else {
                        value.push_str(values.get(*slot));
                    }
                    out.extend_from_slice(SOFT_BREAK);
                    out.extend_from_slice(&encode(&value));
                    out.extend_from_slice(SOFT_BREAK);
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

    fn decoded(bytes: &[u8]) -> String {
        let text = quoted_printable::decode(bytes, quoted_printable::ParseMode::Strict)
            .expect("valid quoted-printable");
        String::from_utf8(text).expect("utf-8")
    }

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
            decoded(&template.fill(&values, true)),
            "<p>Good morning, Ada &amp; &lt;Bob&gt;,</p><a href=\"https://x/u?a=1&amp;b=2\">x</a> Qx7Slot stays"
        );
        assert_eq!(
            decoded(&template.fill(&values, false)),
            "<p>Good morning, Ada & <Bob>,</p><a href=\"https://x/u?a=1&b=2\">x</a> Qx7Slot stays"
        );
    }

    #[test]
    fn encoded_parts_keep_short_lines_and_crlf_line_ends() {
        let long = "é word ".repeat(40);
        let template = Template::parse(&format!(
            "{long}\n{}{long}\nend\n",
            Slot::Preferences.marker()
        ));
        let link = format!("https://example.com/{}", "p".repeat(120));
        let values = Personal {
            greeting: "",
            preferences: &link,
            unsubscribe: "",
        };
        let bytes = template.fill(&values, false);
        let text = String::from_utf8(bytes.clone()).expect("ascii");
        assert!(text.is_ascii());
        assert!(text.split("\r\n").all(|line| line.len() <= 76), "{text}");
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert_eq!(
            decoded(&bytes),
            format!("{long}\r\n{link}{long}\r\nend\r\n")
        );
    }
}
