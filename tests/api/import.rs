//! Bringing a list in and taking it out: `masthead import` and `masthead
//! export` on the command line.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use masthead::newsletter::import::{ImportWatch, SubscriberImport};
use masthead::newsletter::store::{self, SubscriberFilter};
use masthead::newsletter::SubscriberStatus;
use masthead::newsletter::SuppressionReason;
use masthead::platform::domain::EmailAddress;
use masthead::platform::mail::suppression::{Entry, Whom};
use masthead::state::{AppState, Core};
use sha2::{Digest, Sha256};

use crate::helpers::{polled, TestApp};

fn write(dir: &tempfile::TempDir, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("writing the file");
    path
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl TestApp {
    fn import(&self, what: &str, file: &Path, options: &[&str]) -> std::process::Output {
        let file = file.to_string_lossy();
        let mut args = vec!["import", what, file.as_ref()];
        args.extend_from_slice(options);
        self.cli(&args, "")
    }

    fn imported(&self, what: &str, file: &Path, options: &[&str]) -> String {
        let out = self.import(what, file, options);
        assert!(out.status.success(), "import failed: {}", stderr(&out));
        stdout(&out)
    }

    fn subscriber_count(&self) -> i64 {
        let mut conn = self.pool().get().expect("conn");
        store::search(&mut conn, &SubscriberFilter::default(), 1, 0)
            .expect("query")
            .1
    }

    fn suppress(&self, email: &str, reason: SuppressionReason) {
        let mut conn = self.pool().get().expect("conn");
        let email = EmailAddress::parse(email).expect("valid");
        let entry = Entry::Imported {
            reason,
            detail: None,
        };
        let at = self.now().naive_utc();
        self.suppressions()
            .add(&mut conn, Whom::Address(&email), entry, at)
            .expect("stored");
    }

    fn export(&self, list: &str) -> String {
        let out = self.cli(&["export", list], "");
        assert!(out.status.success(), "export failed: {}", stderr(&out));
        stdout(&out)
    }
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, s))
        .expect("a time")
}

const EVERY_KIND: &str = "\
Email Address,name,sections,status,confirmed_at,subscribed_at,source,favourite colour
new.confirmed@example.com,Ada Lovelace,patents,confirmed,2024-01-02T03:04:05Z,2024-01-01 00:00:00,mailchimp,blue
  New.Pending@Example.COM  ,,,,,,,red
existing@example.com,Someone Else,trademarks,confirmed,,,,
bounced@example.com,,,confirmed,,,,
not-an-address,,,,,,,
dup@example.com,,,,,,,
DUP@example.com ,,,,,,,
sect@example.com,,sport,,,,,
dated@example.com,,,,2024-02-03,,,
";

#[tokio::test]
async fn a_dry_run_reports_every_kind_of_row_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.add_sections(&["Patents", "Trademarks"]);
    app.seed_subscribers(&["existing@example.com"], &["patents"]);
    app.suppress("bounced@example.com", SuppressionReason::HardBounce);
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(&dir, "list.csv", EVERY_KIND);

    let report = app.imported("subscribers", &file, &["--dry-run"]);

    assert!(report.contains("dry run: nothing was written"), "{report}");
    assert!(
        report.contains("columns ignored: favourite colour"),
        "{report}"
    );
    assert!(
        report.contains("row 6: `not-an-address` is not an email address"),
        "{report}"
    );
    assert!(
        report.contains("row 8: the same address as row 7"),
        "{report}"
    );
    assert!(
        report.contains("row 9: `sport` is not a section"),
        "{report}"
    );
    assert!(
        report.contains("9 rows: new 4, updated 0, unchanged 1, invalid 3, suppressed 1"),
        "{report}"
    );
    assert!(
        !report.contains("import "),
        "a dry run records no import: {report}"
    );
    assert_eq!(app.subscriber_count(), 1);
    assert!(app.subscriber("new.confirmed@example.com").is_none());
    assert!(app.outbox("new.pending@example.com").is_empty());
}

#[tokio::test]
async fn an_import_keeps_consent_and_never_subscribes_a_suppressed_address() {
    let app = TestApp::spawn().await;
    app.add_sections(&["Patents", "Trademarks"]);
    app.seed_subscribers(&["existing@example.com"], &["patents"]);
    app.suppress("bounced@example.com", SuppressionReason::HardBounce);
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(&dir, "list.csv", EVERY_KIND);

    let report = app.imported("subscribers", &file, &[]);

    assert!(
        report.contains("9 rows: new 4, updated 0, unchanged 1, invalid 3, suppressed 1"),
        "{report}"
    );
    let confirmed = app
        .subscriber("new.confirmed@example.com")
        .expect("imported");
    assert_eq!(confirmed.status, SubscriberStatus::Confirmed);
    assert_eq!(confirmed.confirmed_at, Some(at(2024, 1, 2, 3, 4, 5)));
    assert_eq!(confirmed.created_at, at(2024, 1, 1, 0, 0, 0));
    assert_eq!(confirmed.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(confirmed.origin.as_deref(), Some("mailchimp"));
    assert_eq!(confirmed.sections.as_slice(), ["patents"]);
    // No confirmation recorded: pending, and not mailed unless asked.
    let pending = app.subscriber("new.pending@example.com").expect("imported");
    assert_eq!(pending.status, SubscriberStatus::Pending);
    assert_eq!(pending.confirmed_at, None);
    assert_eq!(pending.sections.as_slice(), ["patents", "trademarks"]);
    assert!(app.outbox("new.pending@example.com").is_empty());
    // A confirmation date alone is a confirmation.
    let dated = app.subscriber("dated@example.com").expect("imported");
    assert_eq!(dated.status, SubscriberStatus::Confirmed);
    assert_eq!(dated.confirmed_at, Some(at(2024, 2, 3, 0, 0, 0)));
    assert!(app.subscriber("bounced@example.com").is_none());
    assert!(app.subscriber("dup@example.com").is_some());
    assert!(app.subscriber("sect@example.com").is_none());
    // Without --update, who is already on the list stays as they were.
    let existing = app.subscriber("existing@example.com").expect("kept");
    assert_eq!(existing.sections.as_slice(), ["patents"]);
    assert_eq!(existing.name, None);
    assert_eq!(app.subscriber_count(), 5);
}

#[tokio::test]
async fn update_changes_only_the_fields_it_names() {
    let app = TestApp::spawn().await;
    app.add_sections(&["Patents", "Trademarks"]);
    app.seed_subscribers(&["existing@example.com"], &["patents"]);
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(
        &dir,
        "list.csv",
        "email,name,sections,status\nexisting@example.com,New Name,trademarks,unsubscribed\n",
    );

    let report = app.imported("subscribers", &file, &["--update", "name"]);
    assert!(report.contains("new 0, updated 1, unchanged 0"), "{report}");
    let after = app.subscriber("existing@example.com").expect("kept");
    assert_eq!(after.name.as_deref(), Some("New Name"));
    assert_eq!(after.sections.as_slice(), ["patents"]);
    assert_eq!(after.status, SubscriberStatus::Confirmed);

    let report = app.imported("subscribers", &file, &["--update", "sections,name"]);
    assert!(report.contains("new 0, updated 1, unchanged 0"), "{report}");
    let after = app.subscriber("existing@example.com").expect("kept");
    assert_eq!(after.sections.as_slice(), ["trademarks"]);
    assert_eq!(after.status, SubscriberStatus::Confirmed);

    let report = app.imported("subscribers", &file, &["--update", "sections,name"]);
    assert!(report.contains("new 0, updated 0, unchanged 1"), "{report}");
}

#[tokio::test]
async fn confirmations_go_only_when_asked_and_are_paced() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(
        &dir,
        "list.csv",
        "email,status\none@example.com,pending\ntwo@example.com,\nthree@example.com,pending\nfour@example.com,confirmed\n",
    );

    let report = app.imported(
        "subscribers",
        &file,
        &["--send-confirmations", "--confirmations-per-hour", "60"],
    );

    assert!(report.contains("confirmation links queued: 3"), "{report}");
    let times: Vec<_> = ["one@example.com", "two@example.com", "three@example.com"]
        .iter()
        .map(|email| {
            let queued = app.outbox(email);
            assert_eq!(queued.len(), 1, "{email}");
            assert_eq!(queued[0].template, "newsletter_confirm");
            queued[0].next_attempt_at
        })
        .collect();
    assert_eq!((times[1] - times[0]).num_seconds(), 60);
    assert_eq!((times[2] - times[1]).num_seconds(), 60);
    assert!(app.outbox("four@example.com").is_empty());
    // The command line's clock is the real one; the worker's stands still
    // until moved. The link confirms like a sign-up's.
    app.set_time(times[0].and_utc() + chrono::Duration::seconds(1));
    let token = app.mailbox.nth("one@example.com", 1).await.token();
    let confirmed = app
        .post(
            &TestApp::browser(),
            "/api/v1/newsletter/confirm",
            serde_json::json!({ "token": token }),
        )
        .await;
    assert_eq!(confirmed.status(), reqwest::StatusCode::OK);
    assert_eq!(
        app.subscriber("one@example.com").expect("kept").status,
        SubscriberStatus::Confirmed
    );
}

#[tokio::test]
async fn a_malformed_file_is_refused_whole_with_its_reason() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("a folder");
    let mut latin1 = b"email,name\nfirst@example.com,Ann\nsecond@example.com,Jos".to_vec();
    latin1.extend_from_slice(&[0xe9, b'\n']);
    let cases = [
        (write(&dir, "latin1.csv", latin1), "not UTF-8 text (row 3)"),
        (
            write(&dir, "columns.csv", "address,name\nfirst@example.com,Ann\n"),
            "no `email` column (its columns: address, name)",
        ),
        (
            write(
                &dir,
                "ragged.csv",
                "email,name\nfirst@example.com,Ann\nsecond@example.com,Bob,extra\n",
            ),
            "not valid CSV at row 3",
        ),
        (write(&dir, "empty.csv", ""), "the file is empty"),
    ];
    for (file, reason) in &cases {
        let out = app.import("subscribers", file, &[]);
        assert!(!out.status.success(), "{}", file.display());
        assert!(
            stderr(&out).contains(reason),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
    }
    // A file too large is refused before it is read (a sparse file takes
    // no room on disk).
    let huge = dir.path().join("huge.csv");
    let handle = std::fs::File::create(&huge).expect("created");
    handle
        .set_len(masthead::newsletter::csv_file::MAX_FILE_BYTES + 1)
        .expect("sized");
    let out = app.import("subscribers", &huge, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at most"), "{}", stderr(&out));
    assert!(app.subscriber("first@example.com").is_none());
    assert_eq!(app.subscriber_count(), 0);
}

#[tokio::test]
async fn an_interrupted_import_carries_on_without_duplicates() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().expect("a folder");
    let mut csv = String::from("email,status\n");
    for n in 0..1_200 {
        csv.push_str(&format!("reader{n}@example.com,confirmed\n"));
    }
    // A duplicate of a row the first run commits, after where it stops.
    csv.push_str("reader0@example.com,confirmed\n");
    let file = write(&dir, "big.csv", csv);
    let core = Core::start(app.settings.clone(), app.clock.clone())
        .await
        .expect("core");
    let state = AppState::new(&core).expect("state");
    // Stopped as Ctrl-C stops it: after the batch in hand.
    let (_stop, stopped) = tokio::sync::watch::channel(true);
    let first = state
        .newsletter
        .import_subscribers(
            file.clone(),
            SubscriberImport {
                dry_run: false,
                send_confirmations: false,
                confirmations_per_hour: 600,
                update: Vec::new(),
            },
            ImportWatch {
                progress: Box::new(|_| {}),
                stop: Some(stopped),
            },
        )
        .await
        .expect("imported in part");
    assert!(first.interrupted);
    assert_eq!(first.counts.new, 500);
    assert_eq!(app.subscriber_count(), 500);

    let report = app.imported("subscribers", &file, &[]);

    assert!(
        report.contains("carried on an interrupted import after row 501"),
        "{report}"
    );
    assert!(
        report.contains("row 1202: the same address as row 2"),
        "{report}"
    );
    assert!(
        report.contains("1201 rows: new 1200, updated 0, unchanged 0, invalid 1, suppressed 0"),
        "{report}"
    );
    assert!(report.contains(&format!("import {}", first.import_id.expect("an id"))));
    assert_eq!(app.subscriber_count(), 1_200);
    // Finished: the same file again is a new import, all of it unchanged.
    let again = app.imported("subscribers", &file, &[]);
    assert!(!again.contains("carried on"), "{again}");
    assert!(
        again.contains("new 0, updated 0, unchanged 1200, invalid 1"),
        "{again}"
    );
}

#[tokio::test]
async fn suppressions_come_in_by_address_or_hash_with_their_reason() {
    let app = TestApp::spawn().await;
    app.seed_subscribers(&["complainer@example.com"], &[]);
    app.suppress("gone@example.com", SuppressionReason::Unsubscribed);
    let erased = app.suppression("gone@example.com").expect("suppressed");
    let mut conn = app.pool().get().expect("conn");
    app.suppressions()
        .lift(&mut conn, &erased.email_hash)
        .expect("lifted");
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(
        &dir,
        "suppressions.csv",
        format!(
            "email,email_hash,reason,detail\n\
             Bounced@Example.com,,cleaned,mailbox full\n\
             complainer@example.com,,spam,\n\
             ,{},,\n\
             odd@example.com,,lost,\n\
             ,not-a-hash,,\n\
             plain@example.com,,,\n",
            erased.email_hash
        ),
    );

    let report = app.imported("suppressions", &file, &[]);

    assert!(
        report.contains("6 rows: new 4, updated 0, unchanged 0, invalid 2"),
        "{report}"
    );
    assert!(report.contains("row 5: reason `lost`"), "{report}");
    assert!(report.contains("row 6: the hash is not"), "{report}");
    let bounced = app.suppression("bounced@example.com").expect("suppressed");
    assert_eq!(bounced.reason, SuppressionReason::HardBounce);
    assert_eq!(bounced.detail.as_deref(), Some("mailbox full"));
    assert_eq!(
        app.suppression("complainer@example.com")
            .expect("suppressed")
            .reason,
        SuppressionReason::Complaint
    );
    // A complaint ends the subscription too.
    assert_eq!(
        app.subscriber("complainer@example.com")
            .expect("kept")
            .status,
        SubscriberStatus::Unsubscribed
    );
    // By its hash alone, the address is matched again.
    let back = app.suppression("gone@example.com").expect("suppressed");
    assert_eq!(back.email, None);
    assert_eq!(
        app.suppression("plain@example.com")
            .expect("suppressed")
            .reason,
        SuppressionReason::Unsubscribed
    );
    // The same list again changes nothing.
    let again = app.imported("suppressions", &file, &[]);
    assert!(
        again.contains("new 0, updated 0, unchanged 4, invalid 2"),
        "{again}"
    );
}

#[tokio::test]
async fn suppression_hashes_are_keyed_not_the_plain_sha256_of_the_address() {
    let app = TestApp::spawn().await;
    app.suppress("someone@example.com", SuppressionReason::HardBounce);
    let stored = app.suppression("someone@example.com").expect("suppressed");
    let plain = hex::encode(Sha256::digest(b"someone@example.com"));
    assert_ne!(stored.email_hash.to_string(), plain);
    assert_eq!(stored.email_hash.to_string().len(), 64);
    // A list whose hashes are plain SHA-256 (as other systems keep them)
    // cannot be matched against ours without the key.
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(
        &dir,
        "plain.csv",
        format!("email_hash,reason\n{plain},complaint\n"),
    );
    app.imported("suppressions", &file, &[]);
    assert_eq!(
        app.suppression("someone@example.com").expect("kept").reason,
        SuppressionReason::HardBounce
    );
}

#[tokio::test]
async fn an_export_imported_into_an_empty_database_gives_the_same_list() {
    let app = TestApp::spawn().await;
    app.add_sections(&["Patents", "Trademarks"]);
    assert_eq!(app.subscribe("native@example.com").await.status(), 202);
    let dir = tempfile::tempdir().expect("a folder");
    let file = write(
        &dir,
        "list.csv",
        "email,name,sections,status,subscribed_at,confirmed_at,unsubscribed_at,source\n\
         ada@example.com,\"Lovelace, Ada\",\"patents,trademarks\",confirmed,2024-01-01T08:00:00Z,2024-01-01T09:00:00.123456Z,,mailchimp\n\
         bob@example.com,,trademarks,unsubscribed,2023-05-01T00:00:00Z,2023-05-02T00:00:00Z,2024-02-01T00:00:00Z,ghost\n\
         cy@example.com,Cy,,pending,2024-03-01T00:00:00Z,,,\n",
    );
    app.imported("subscribers", &file, &[]);
    app.suppress("bounced@example.com", SuppressionReason::HardBounce);
    let subscribers = app.export("subscribers");
    let suppressions = app.export("suppressions");
    assert_eq!(subscribers.lines().count(), 5, "{subscribers}");
    assert!(
        subscribers.lines().next().expect("a header").starts_with(
            "email,name,sections,status,subscribed_at,confirmed_at,unsubscribed_at,source"
        ),
        "{subscribers}"
    );
    assert!(subscribers.contains(
        "ada@example.com,\"Lovelace, Ada\",\"patents,trademarks\",confirmed,2024-01-01T08:00:00.000000Z,2024-01-01T09:00:00.123456Z,,mailchimp,"
    ), "{subscribers}");

    let other = TestApp::spawn().await;
    other.add_sections(&["Patents", "Trademarks"]);
    let exported = write(&dir, "subscribers.csv", &subscribers);
    let report = other.imported("subscribers", &exported, &[]);
    assert!(
        report.contains("4 rows: new 4, updated 0, unchanged 0, invalid 0"),
        "{report}"
    );
    let report = other.imported(
        "suppressions",
        &write(&dir, "suppressions.csv", &suppressions),
        &[],
    );
    assert!(report.contains("invalid 0"), "{report}");

    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&other.export("subscribers")), sorted(&subscribers));
    assert_eq!(sorted(&other.export("suppressions")), sorted(&suppressions));
}

#[tokio::test]
async fn readers_are_exported_without_their_passwords() {
    let app = TestApp::spawn().await;
    let admin = TestApp::browser();
    app.privileged(&admin, "chief@example.com", "admin").await;
    app.verified_reader(&TestApp::browser(), "reader@example.com")
        .await;
    let out = app.cli(&["export", "readers"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.starts_with("email,name,company,job_title,role,email_verified_at,created_at\n"));
    assert!(
        csv.contains("chief@example.com,Grace Hopper,,,admin,"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("reader@example.com,") && l.contains(",reader,")),
        "{csv}"
    );
    assert!(!csv.contains("argon2"), "{csv}");
    assert!(stderr(&out).contains("exported 2 rows"));
}

#[tokio::test]
async fn suppressions_stored_as_plain_sha256_are_keyed_at_start_up() {
    use diesel::ExpressionMethods;
    use diesel::RunQueryDsl;
    use masthead::newsletter::EmailHash;
    use masthead::platform::db::schema::newsletter_suppressions as rows;
    let app = TestApp::spawn().await;
    let plain = hex::encode(Sha256::digest(b"erased@example.com"));
    {
        let mut conn = app.pool().get().expect("conn");
        diesel::insert_into(rows::table)
            .values((
                rows::email_hash.eq(EmailHash::parse(&plain).expect("a hash")),
                rows::reason.eq(SuppressionReason::Erased),
                rows::created_at.eq(app.now().naive_utc()),
                rows::keyed.eq(false),
            ))
            .execute(&mut conn)
            .expect("a row as written before keying");
    }
    assert!(app.suppression("erased@example.com").is_none());

    let app = app.restart(|_| {}).await;

    let keyed = app
        .suppression("erased@example.com")
        .expect("matched again");
    assert_eq!(keyed.reason, SuppressionReason::Erased);
    assert_ne!(keyed.email_hash.to_string(), plain);
    // Once keyed, a later start leaves it alone.
    let app = app.restart(|_| {}).await;
    assert_eq!(
        app.suppression("erased@example.com")
            .expect("still matched")
            .email_hash,
        keyed.email_hash
    );
}

/// A `multipart/form-data` body as a browser sends the import form.
fn multipart(fields: &[(&str, &str)], file: &str) -> (String, Vec<u8>) {
    let boundary = "----masthead-test-boundary-7d91";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"list.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
    ));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

impl TestApp {
    async fn upload(
        &self,
        client: &reqwest::Client,
        fields: &[(&str, &str)],
        file: &str,
    ) -> reqwest::Response {
        let (_, form) = self.page(client, "/admin/subscribers/import").await;
        let token = crate::helpers::form_token(&form);
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &token));
        let (content_type, body) = multipart(&fields, file);
        client
            .post(self.url("/admin/subscribers/import"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the upload is sent")
    }
}

#[tokio::test]
async fn the_console_shows_a_dry_run_then_imports_with_a_progress_page() {
    let app = TestApp::spawn().await;
    app.add_sections(&["Patents", "Trademarks"]);
    app.suppress("bounced@example.com", SuppressionReason::HardBounce);
    let admin = app.admin().await;
    let list = "email,name,status,confirmed_at,colour\n\
                ada@example.com,Ada,confirmed,2024-01-02T03:04:05Z,red\n\
                bounced@example.com,,confirmed,,\n\
                nobody,,,,\n\
                pending@example.com,,,,\n";

    let dry = app.upload(&admin, &[("dry_run", "on")], list).await;
    assert_eq!(dry.status(), reqwest::StatusCode::OK);
    let page = dry.text().await.expect("a page");
    assert!(page.contains("What the import would do"), "{page}");
    assert!(page.contains("<dt>New</dt><dd>2</dd>"), "{page}");
    assert!(page.contains("<dt>Suppressed</dt><dd>1</dd>"), "{page}");
    assert!(
        page.contains("<td>4</td><td>`nobody` is not an email address"),
        "{page}"
    );
    assert!(page.contains("Columns ignored: colour."), "{page}");
    assert!(app.subscriber("ada@example.com").is_none());

    let started = app.upload(&admin, &[], list).await;
    assert_eq!(started.status(), reqwest::StatusCode::SEE_OTHER);
    let progress = crate::helpers::location(&started);
    assert!(
        progress.starts_with("/admin/subscribers/imports/"),
        "{progress}"
    );
    let page = polled(
        || async { app.page(&admin, &progress).await.1 },
        |page| page.contains("Done: 4 rows."),
    )
    .await;
    assert!(page.contains("Done: 4 rows."), "{page}");
    assert!(page.contains("<dt>New</dt><dd>2</dd>"), "{page}");
    assert!(page.contains("<dt>Invalid</dt><dd>1</dd>"), "{page}");
    let ada = app.subscriber("ada@example.com").expect("imported");
    assert_eq!(ada.status, SubscriberStatus::Confirmed);
    assert_eq!(ada.confirmed_at, Some(at(2024, 1, 2, 3, 4, 5)));
    assert_eq!(
        app.subscriber("pending@example.com")
            .expect("imported")
            .status,
        SubscriberStatus::Pending
    );
    assert!(app.subscriber("bounced@example.com").is_none());
}

#[tokio::test]
async fn the_console_refuses_a_bad_file_a_missing_token_and_non_admins() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let refused = app.upload(&admin, &[], "address\nada@example.com\n").await;
    assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.expect("a page");
    assert!(page.contains("<title>Error: Import subscribers"), "{page}");
    assert!(page.contains("no `email` column"), "{page}");
    assert!(page.contains("aria-invalid=\"true\""), "{page}");

    let (content_type, body) = multipart(&[], "email\nada@example.com\n");
    let forged = admin
        .post(app.url("/admin/subscribers/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(app.subscriber("ada@example.com").is_none());

    let editor = app.editor().await;
    for path in [
        "/admin/subscribers/import",
        "/admin/subscribers/export/subscribers.csv",
    ] {
        let status = app.get(&editor, path).await.status();
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn the_console_downloads_the_lists_as_csv() {
    let app = TestApp::spawn().await;
    app.seed_subscribers(&["one@example.com", "two@example.com"], &[]);
    app.suppress("gone@example.com", SuppressionReason::Complaint);
    let admin = app.admin().await;

    let download = app
        .get(&admin, "/admin/subscribers/export/subscribers.csv")
        .await;
    assert_eq!(download.status(), reqwest::StatusCode::OK);
    assert_eq!(
        crate::helpers::header(&download, "content-type"),
        "text/csv; charset=utf-8"
    );
    assert!(crate::helpers::header(&download, "content-disposition").contains("subscribers.csv"));
    let csv = download.text().await.expect("a body");
    assert_eq!(csv, app.export("subscribers"));
    assert_eq!(csv.lines().count(), 3, "{csv}");

    let csv = app
        .get(&admin, "/admin/subscribers/export/suppressions.csv")
        .await
        .text()
        .await
        .expect("a body");
    assert!(csv.contains("gone@example.com,"), "{csv}");
    let csv = app
        .get(&admin, "/admin/subscribers/export/readers.csv")
        .await
        .text()
        .await
        .expect("a body");
    assert!(csv.starts_with("email,name,company"), "{csv}");
    assert_eq!(
        app.get(&admin, "/admin/subscribers/export/everything.csv")
            .await
            .status(),
        reqwest::StatusCode::NOT_FOUND
    );
}

/// The import in a real browser: the form, a dry run's report, the upload
/// and the progress page, each checked with axe and photographed.
#[tokio::test]
async fn an_admin_imports_a_list_in_the_browser() {
    let app = TestApp::spawn().await;
    let Some(browser) =
        crate::browser::Browser::start("an_admin_imports_a_list_in_the_browser", &app).await
    else {
        return;
    };
    app.add_sections(&["Patents"]);
    let folder = tempfile::tempdir().expect("a folder");
    let list = folder.path().join("list.csv");
    std::fs::write(
        &list,
        "email,name,status,confirmed_at\n\
         ada@example.com,Ada,confirmed,2024-01-02T03:04:05Z\n\
         nobody,,,\n\
         grace@example.com,Grace,,\n",
    )
    .expect("the list is written");
    let admin_email = "importer@example.com";
    app.privileged(&TestApp::browser(), admin_email, "admin")
        .await;
    browser.goto("/login?next=/admin/subscribers/import").await;
    browser.fill_label("Email address", admin_email).await;
    browser
        .fill_label("Password", crate::helpers::PASSWORD)
        .await;
    browser.click_button("Log in").await;
    browser.wait_for_text("A CSV file in UTF-8").await;
    browser.screenshot("console-import").await;
    browser.axe("the import form").await;

    let ticked = || async {
        browser
            .execute("return document.getElementById('dry_run').checked;", vec![])
            .await
    };
    assert_eq!(
        ticked().await,
        true,
        "a dry run comes first unless unticked"
    );
    browser.find("#file").await.choose_file(&list).await;
    browser.click_button("Upload").await;
    let report = browser.wait_for_text("What the import would do").await;
    assert!(
        report.contains("`nobody` is not an email address"),
        "{report}"
    );
    assert!(app.subscriber("ada@example.com").is_none());
    browser.screenshot("console-import-dry-run").await;
    browser.axe("a dry run's report").await;

    browser.find("#file").await.choose_file(&list).await;
    assert_eq!(ticked().await, true, "still ticked after a dry run");
    browser.find("label[for=dry_run]").await.click().await;
    assert_eq!(ticked().await, false);
    browser.click_button("Upload").await;
    browser.wait_for_text("Import of subscribers").await;
    for _ in 0..100 {
        if browser.text().await.contains("Done: 3 rows.") {
            break;
        }
        browser
            .find("main a[href^='/admin/subscribers/imports/']")
            .await
            .click()
            .await;
    }
    let done = browser.wait_for_text("Done: 3 rows.").await;
    assert!(done.contains("New\n2"), "{done}");
    browser.screenshot("console-import-done").await;
    browser.axe("a finished import").await;
    let ada = app.subscriber("ada@example.com").expect("imported");
    assert_eq!(ada.status, SubscriberStatus::Confirmed);
}
