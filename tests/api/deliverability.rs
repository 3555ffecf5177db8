//! What every message masthead sends must carry to be delivered: checked
//! on each email the flows of `email_links` produce (every template), so a
//! new email type is held to the same rules.
//!
//! - a text and an HTML part, a `Message-ID` and a `Date`;
//! - newsletter mail: `List-Id`, and RFC 8058's `List-Unsubscribe` (with an
//!   https link) and `List-Unsubscribe-Post`, each on one line;
//! - a DKIM signature that an independent verifier (dkimpy, installed by
//!   `tests/mail/setup`) accepts, covering the headers mailbox providers
//!   look at;
//! - a VERP return path naming this very message and its recipient.

use std::io::Write;
use std::process::{Command, Stdio};

use masthead::platform::config::{DkimAlgorithm, DkimSettings, Settings};
use masthead::platform::mail::{ReturnPaths, SentMessage};

use crate::helpers::{ReceivedEmail, TestApp};

/// An Ed25519 key (RFC 8463) for the tests: the base64 of its 32-byte seed.
pub const DKIM_SEED: &str = "UH9vOmNj2q8Jm0XkC3rA1y0n9d7FWfyRk4r2ICjQ8XM=";

pub fn with_dkim(settings: &mut Settings) {
    settings.mail.dkim = Some(DkimSettings {
        selector: "mail".into(),
        domain: "masthead.example".into(),
        algorithm: DkimAlgorithm::Ed25519,
        private_key: DKIM_SEED.to_owned().into(),
    });
}

/// Templates whose messages go to newsletter subscribers, and so carry the
/// list headers. (The confirmation request goes to someone not yet on the
/// list.)
const LIST_MAIL: [&str; 2] = ["digest", "newsletter_welcome"];

/// The python of the venv `tests/mail/setup` makes: the one named by
/// MASTHEAD_DKIM_PYTHON (as CI sets it), or else one set up on first use in
/// the target folder, so that `cargo test` alone needs only python3.
fn dkim_python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(python) = std::env::var("MASTHEAD_DKIM_PYTHON") {
                return python;
            }
            let setup = std::process::Command::new("tests/mail/setup")
                .env("MASTHEAD_MAIL_TOOLS", env!("CARGO_TARGET_TMPDIR"))
                .output()
                .expect("tests/mail/setup runs");
            assert!(
                setup.status.success(),
                "tests/mail/setup could not install dkimpy (python3 with venv and pip is needed): {}",
                String::from_utf8_lossy(&setup.stderr)
            );
            String::from_utf8_lossy(&setup.stdout).trim().to_owned()
        })
        .clone()
}

/// Verifies the message's DKIM signature with dkimpy; returns the signed
/// header names, lowercased.
pub fn verify_dkim(mail: &ReceivedEmail) -> Result<Vec<String>, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mail/dkim_verify.py");
    let mut child = Command::new(dkim_python())
        .args([script, DKIM_SEED])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the DKIM verifier runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&mail.raw)
        .expect("writing the message");
    let out = child.wait_with_output().expect("the verifier finishes");
    let signed = String::from_utf8_lossy(&out.stdout)
        .trim()
        .to_ascii_lowercase();
    if out.status.success() {
        Ok(signed.split(':').map(str::to_owned).collect())
    } else {
        Err(format!(
            "signature does not verify: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The header as written: one line, or a failure if it is folded.
fn one_line(mail: &ReceivedEmail, name: &str) -> Result<String, String> {
    let raw = String::from_utf8_lossy(&mail.raw).replace("\r\n", "\n");
    let head = raw.split("\n\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let line = lines
        .by_ref()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .ok_or_else(|| format!("no {name} header"))?;
    if lines
        .next()
        .is_some_and(|next| next.starts_with([' ', '\t']))
    {
        return Err(format!("{name} is folded"));
    }
    Ok(line[prefix.len()..].trim().to_owned())
}

/// Everything wrong with one received message of `template`.
pub fn problems(app: &TestApp, mail: &ReceivedEmail, template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let parsed = mail.parsed();
    let mut types = Vec::new();
    let mut stack = vec![&parsed];
    while let Some(part) = stack.pop() {
        types.push(part.ctype.mimetype.clone());
        stack.extend(part.subparts.iter());
    }
    for part in ["text/plain", "text/html"] {
        if !types.iter().any(|t| t == part) {
            found.push(format!("no {part} part"));
        }
    }
    for header in ["Message-ID", "Date", "From", "Subject"] {
        if mail.header(header).is_none_or(|v| v.trim().is_empty()) {
            found.push(format!("no {header}"));
        }
    }
    let list_mail = LIST_MAIL.contains(&template);
    if list_mail {
        match one_line(mail, "List-Unsubscribe") {
            Ok(value) if value.contains("<https://") || value.contains("<http://") => {}
            Ok(value) => found.push(format!("List-Unsubscribe has no web link: {value}")),
            Err(e) => found.push(e),
        }
        match one_line(mail, "List-Unsubscribe-Post") {
            Ok(value) if value == "List-Unsubscribe=One-Click" => {}
            Ok(value) => found.push(format!("List-Unsubscribe-Post is {value:?}")),
            Err(e) => found.push(e),
        }
        if mail.header("List-Id").is_none() {
            found.push("no List-Id".to_owned());
        }
    }
    match verify_dkim(mail) {
        Ok(signed) => {
            let mut wanted = vec!["from", "subject", "date", "message-id", "to"];
            if list_mail {
                wanted.extend(["list-id", "list-unsubscribe", "list-unsubscribe-post"]);
            }
            for header in wanted {
                if !signed.iter().any(|h| h == header) {
                    found.push(format!("DKIM does not sign {header}: {signed:?}"));
                }
            }
        }
        Err(e) => found.push(e),
    }
    if let Err(e) = return_path_names_message(app, mail, template) {
        found.push(e);
    }
    found
}

fn return_path_names_message(
    app: &TestApp,
    mail: &ReceivedEmail,
    template: &str,
) -> Result<(), String> {
    let to = mail.recipients.first().ok_or("no recipient")?;
    let secret = app.settings.auth.secret.clone().ok_or("no auth.secret")?;
    let paths = ReturnPaths::new(&secret, None);
    let sent = paths
        .parse(&mail.sender)
        .ok_or_else(|| format!("return path {:?} is not a signed VERP address", mail.sender))?;
    let subject = mail.subject();
    match sent {
        SentMessage::Outbox(id) => {
            let row = app
                .outbox(to)
                .into_iter()
                .find(|row| row.id == id)
                .ok_or_else(|| format!("return path names outbox {id}, not a message to {to}"))?;
            if row.subject != subject {
                return Err(format!("return path names {:?}", row.subject));
            }
        }
        SentMessage::Digest { subscriber, .. } => {
            let found = app.subscriber(to).ok_or("a digest to a non-subscriber")?;
            if template != "digest" || found.id.as_uuid() != subscriber {
                return Err(format!("return path names digest to {subscriber}"));
            }
        }
    }
    Ok(())
}
