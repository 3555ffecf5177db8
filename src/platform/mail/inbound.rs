//! Reads one message that came back to us: a delivery status notification
//! (RFC 3464), a complaint (an ARF feedback report, RFC 5965), or anything
//! else (auto-replies, replies, spam), which is ignored. Only reads: what to
//! do about it is decided by `mail::service::ingest`.
//!
//! Mail from outside is untrusted input: every field is optional, nothing
//! here panics on malformed mail, and a message too odd to read is ignored.

use mailparse::{MailHeaderMap, ParsedMail};

/// How bad a bounce is: the class of its status code (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 5.x.x: the address does not work and will not.
    Permanent,
    /// 4.x.x: a full mailbox, a server down; may pass later.
    Transient,
}

/// One recipient's part of a delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient` (or `Original-Recipient`), without its type.
    pub address: Option<String>,
    pub severity: Severity,
    /// The status code as given (`5.1.1`), or made from the SMTP reply.
    pub status: String,
    pub diagnostic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A DSN with at least one failed or delayed recipient.
    Bounce {
        /// Where the notification says the failed message came from, and
        /// the addresses the notification itself was delivered to: the
        /// VERP return path is among them.
        return_paths: Vec<String>,
        reporting_mta: Option<String>,
        recipients: Vec<RecipientStatus>,
    },
    /// A feedback report saying the recipient marked our mail as spam.
    Complaint {
        return_paths: Vec<String>,
        /// `Original-Rcpt-To`, or the `To` of the reported message.
        recipients: Vec<String>,
        feedback_type: String,
        reporting_mta: Option<String>,
    },
    /// Anything else: why it was not taken as a bounce or complaint.
    Ignored(String),
}

/// Headers of the message itself that name the address it was delivered
/// to: for a bounce, the return path of the message that bounced.
const DELIVERY_HEADERS: [&str; 5] = [
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "To",
];

/// Reads one message.
pub fn read(raw: &[u8]) -> Inbound {
    let Ok(message) = mailparse::parse_mail(raw) else {
        return Inbound::Ignored("not a readable message".to_owned());
    };
    if message.ctype.mimetype != "multipart/report" {
        return Inbound::Ignored(format!(
            "a {} message, not a report",
            message.ctype.mimetype
        ));
    }
    let report_type = message
        .ctype
        .params
        .get("report-type")
        .map(|t| t.to_ascii_lowercase())
        .unwrap_or_default();
    let delivered_to: Vec<String> = DELIVERY_HEADERS
        .iter()
        .flat_map(|name| message.headers.get_all_values(name))
        .flat_map(|value| addresses(&value))
        .collect();
    match report_type.as_str() {
        "delivery-status" => read_dsn(&message, delivered_to),
        "feedback-report" => read_arf(&message, delivered_to),
        other => Inbound::Ignored(format!("a report of type {other:?}")),
    }
}

fn read_dsn(message: &ParsedMail<'_>, mut return_paths: Vec<String>) -> Inbound {
    let Some(status) = part(
        message,
        &["message/delivery-status", "message/global-delivery-status"],
    ) else {
        return Inbound::Ignored("a delivery report without a delivery-status part".to_owned());
    };
    let Ok(body) = status.get_body_raw() else {
        return Inbound::Ignored("an unreadable delivery-status part".to_owned());
    };
    let groups = field_groups(&body);
    let Some((per_message, per_recipient)) = groups.split_first() else {
        return Inbound::Ignored("an empty delivery-status part".to_owned());
    };
    let reporting_mta = field(per_message, "Reporting-MTA").map(|v| after_type(&v));
    let recipients: Vec<RecipientStatus> =
        per_recipient.iter().filter_map(recipient_status).collect();
    if recipients.is_empty() {
        return Inbound::Ignored("a delivery report with no failed recipient".to_owned());
    }
    // The bounced message's own headers, when it is returned whole or in
    // part, may still carry its return path.
    if let Some(original) = enclosed_headers(message) {
        return_paths.extend(values(&original, "Return-Path").flat_map(addresses));
    }
    Inbound::Bounce {
        return_paths,
        reporting_mta,
        recipients,
    }
}

fn recipient_status(fields: &Fields) -> Option<RecipientStatus> {
    let action = field(fields, "Action")?.to_ascii_lowercase();
    if !matches!(action.as_str(), "failed" | "delayed") {
        return None;
    }
    let diagnostic = field(fields, "Diagnostic-Code").map(|v| after_type(&v));
    let status = field(fields, "Status")
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .filter(|s| s.starts_with(['4', '5']))
        .or_else(|| diagnostic.as_deref().and_then(smtp_class));
    let severity = match (action.as_str(), status.as_deref()) {
        ("failed", Some(s)) if s.starts_with('5') => Severity::Permanent,
        ("failed", None) => Severity::Permanent,
        _ => Severity::Transient,
    };
    let address = field(fields, "Final-Recipient")
        .or_else(|| field(fields, "Original-Recipient"))
        .map(|v| after_type(&v))
        .filter(|a| a.contains('@'));
    Some(RecipientStatus {
        address,
        severity,
        status: status.unwrap_or_else(|| "5.0.0".to_owned()),
        diagnostic,
    })
}

/// An enhanced status made from the first SMTP reply code in a diagnostic
/// (`550 5.1.1 …` or `550 no such user`).
fn smtp_class(diagnostic: &str) -> Option<String> {
    let code = diagnostic
        .split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 3)?;
    match code.as_bytes().first() {
        Some(b'5') => Some("5.0.0".to_owned()),
        Some(b'4') => Some("4.0.0".to_owned()),
        _ => None,
    }
}

fn read_arf(message: &ParsedMail<'_>, mut return_paths: Vec<String>) -> Inbound {
    let Some(report) = part(message, &["message/feedback-report"]) else {
        return Inbound::Ignored("a feedback report without its report part".to_owned());
    };
    let Ok(body) = report.get_body_raw() else {
        return Inbound::Ignored("an unreadable feedback-report part".to_owned());
    };
    let groups = field_groups(&body);
    let fields: Fields = groups.into_iter().flatten().collect();
    let feedback_type = field(&fields, "Feedback-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if feedback_type.is_empty() || feedback_type == "not-spam" {
        return Inbound::Ignored(format!("feedback of type {feedback_type:?}"));
    }
    return_paths.extend(values(&fields, "Original-Mail-From").flat_map(addresses));
    let mut recipients: Vec<String> = values(&fields, "Original-Rcpt-To")
        .flat_map(addresses)
        .collect();
    if let Some(original) = enclosed_headers(message) {
        return_paths.extend(values(&original, "Return-Path").flat_map(addresses));
        if recipients.is_empty() {
            recipients.extend(values(&original, "To").flat_map(addresses));
        }
    }
    Inbound::Complaint {
        return_paths,
        recipients,
        feedback_type,
        reporting_mta: field(&fields, "Reporting-MTA").map(|v| after_type(&v)),
    }
}

/// The first part, at any depth, of one of these types.
fn part<'a>(message: &'a ParsedMail<'a>, types: &[&str]) -> Option<&'a ParsedMail<'a>> {
    let mut stack = vec![message];
    while let Some(part) = stack.pop() {
        if types.contains(&part.ctype.mimetype.as_str()) {
            return Some(part);
        }
        stack.extend(part.subparts.iter().rev());
    }
    None
}

/// A group of header fields, read into owned strings: name (lowercase)
/// and decoded value.
type Fields = Vec<(String, String)>;

fn parse_fields(bytes: &[u8]) -> Option<Fields> {
    let (headers, _) = mailparse::parse_headers(bytes).ok()?;
    Some(
        headers
            .iter()
            .map(|h| (h.get_key().to_ascii_lowercase(), h.get_value()))
            .collect(),
    )
}

fn values<'a>(fields: &'a Fields, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    fields
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn field(fields: &Fields, name: &str) -> Option<String> {
    values(fields, name)
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The headers of the message a report encloses (whole, or only its
/// headers), if it has one.
fn enclosed_headers(message: &ParsedMail<'_>) -> Option<Fields> {
    let enclosed = part(
        message,
        &[
            "message/rfc822",
            "text/rfc822-headers",
            "message/global",
            "message/global-headers",
        ],
    )?;
    parse_fields(&enclosed.get_body_raw().ok()?)
}

/// The blank-line separated groups of fields of a report part.
fn field_groups(body: &[u8]) -> Vec<Fields> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .map(str::trim)
        .filter(|group| !group.is_empty())
        .filter_map(|group| parse_fields(format!("{group}\n\n").as_bytes()))
        .filter(|fields| !fields.is_empty())
        .collect()
}

/// `rfc822; someone@example.com` → `someone@example.com`.
fn after_type(value: &str) -> String {
    let value = value.split_once(';').map_or(value, |(_, rest)| rest);
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// The addresses in a header value (`"Name" <a@b>, c@d`).
fn addresses(value: &str) -> Vec<String> {
    match mailparse::addrparse(value) {
        Ok(list) => list
            .iter()
            .flat_map(|addr| match addr {
                mailparse::MailAddr::Single(single) => vec![single.addr.clone()],
                mailparse::MailAddr::Group(group) => {
                    group.addrs.iter().map(|a| a.addr.clone()).collect()
                }
            })
            .collect(),
        Err(_) => {
            let bare = after_type(value);
            if bare.contains('@') {
                vec![bare]
            } else {
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLES: [(&str, &str); 6] = [
        (
            "postfix",
            include_str!("../../../tests/mail/samples/postfix_hard.eml"),
        ),
        (
            "exim",
            include_str!("../../../tests/mail/samples/exim_delayed.eml"),
        ),
        (
            "exchange",
            include_str!("../../../tests/mail/samples/exchange_hard.eml"),
        ),
        (
            "gmail",
            include_str!("../../../tests/mail/samples/gmail_hard.eml"),
        ),
        (
            "arf",
            include_str!("../../../tests/mail/samples/arf_complaint.eml"),
        ),
        (
            "auto-reply",
            include_str!("../../../tests/mail/samples/auto_reply.eml"),
        ),
    ];

    fn sample(name: &str) -> Vec<u8> {
        let (_, text) = SAMPLES.iter().find(|(n, _)| *n == name).expect("a sample");
        text.replace("{{return_path}}", "bounces+token@masthead.example")
            .replace("{{recipient}}", "reader@reader.example")
            .into_bytes()
    }

    #[test]
    fn dsns_of_each_mail_system_are_read() {
        for (name, severity, status) in [
            ("postfix", Severity::Permanent, "5.1.1"),
            ("exim", Severity::Transient, "4.0.0"),
            ("exchange", Severity::Permanent, "5.1.10"),
            ("gmail", Severity::Permanent, "5.1.1"),
        ] {
            let Inbound::Bounce {
                return_paths,
                recipients,
                ..
            } = read(&sample(name))
            else {
                panic!("{name}: not read as a bounce");
            };
            assert!(
                return_paths.contains(&"bounces+token@masthead.example".to_owned()),
                "{name}: {return_paths:?}"
            );
            assert_eq!(recipients.len(), 1, "{name}");
            assert_eq!(recipients[0].severity, severity, "{name}");
            assert_eq!(recipients[0].status, status, "{name}");
            assert_eq!(
                recipients[0].address.as_deref(),
                Some("reader@reader.example"),
                "{name}"
            );
        }
    }

    #[test]
    fn a_feedback_report_is_a_complaint_and_an_auto_reply_is_ignored() {
        let Inbound::Complaint {
            return_paths,
            recipients,
            feedback_type,
            ..
        } = read(&sample("arf"))
        else {
            panic!("not read as a complaint");
        };
        assert_eq!(feedback_type, "abuse");
        assert_eq!(recipients, ["reader@reader.example"]);
        assert!(return_paths.contains(&"bounces+token@masthead.example".to_owned()));
        assert!(matches!(read(&sample("auto-reply")), Inbound::Ignored(_)));
        assert!(matches!(read(b""), Inbound::Ignored(_)));
    }

    #[test]
    fn a_status_is_taken_from_the_smtp_reply_when_missing() {
        let dsn = String::from_utf8(sample("postfix"))
            .expect("text")
            .replace("Status: 5.1.1\n", "");
        let Inbound::Bounce { recipients, .. } = read(dsn.as_bytes()) else {
            panic!("not a bounce");
        };
        assert_eq!(recipients[0].status, "5.0.0");
        assert_eq!(recipients[0].severity, Severity::Permanent);
    }

    /// A sample cut, spliced and flipped about.
    fn mangled() -> impl Strategy<Value = Vec<u8>> {
        (
            0..SAMPLES.len(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..24),
            any::<prop::sample::Index>(),
            any::<bool>(),
        )
            .prop_map(|(which, flips, cut, crlf)| {
                let mut bytes = sample(SAMPLES[which].0);
                if crlf {
                    bytes = String::from_utf8_lossy(&bytes)
                        .replace('\n', "\r\n")
                        .into_bytes();
                }
                for (at, byte) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
                bytes
            })
    }

    proptest! {
        #[test]
        fn random_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = read(&bytes);
        }

        #[test]
        fn mangled_reports_never_panic(bytes in mangled()) {
            let _ = read(&bytes);
        }
    }
}
