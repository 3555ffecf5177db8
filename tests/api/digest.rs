use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use masthead::digest::DeliveryStatus;
use masthead::digest::RunId;
use masthead::newsletter::SubscriberId;
use masthead::newsletter::SubscriberStatus;
use masthead::newsletter::SuppressionReason;
use masthead::platform::config::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{article, assert_problem, eventually, ReceivedEmail, TestApp, BUSY_REFUSALS};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid instant")
}

fn london_at_seven(settings: &mut Settings) {
    settings.digest.schedule = true;
    settings.digest.send_at = "07:00".to_owned().try_into().expect("a time");
    settings.digest.timezone = "Europe/London".to_owned().try_into().expect("a zone");
}

impl TestApp {
    /// Signs up for some sections and confirms; returns the welcome email.
    async fn subscriber_of(&self, email: &str, sections: &[&str]) -> ReceivedEmail {
        let response = self
            .post(
                &self.api,
                "/api/v1/newsletter/subscriptions",
                json!({ "email": email, "sections": sections }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let token = self.mailbox.nth(email, 1).await.token();
        let confirmed = self
            .post(
                &TestApp::browser(),
                "/api/v1/newsletter/confirm",
                json!({ "token": token }),
            )
            .await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        self.mailbox.nth(email, 2).await
    }

    async fn sections_and_editor(&self) -> reqwest::Client {
        let editor = self.editor().await;
        for name in ["Patents", "Trademarks", "Copyright"] {
            self.create_section(&editor, name).await;
        }
        editor
    }

    async fn published(&self, editor: &reqwest::Client, title: &str, section: &str) -> Value {
        let draft = self
            .draft(editor, article(title, section, &[], "The full story."))
            .await;
        self.publish(editor, &draft).await
    }

    async fn runs(&self, admin: &reqwest::Client) -> Vec<Value> {
        self.get_json(admin, "/api/v1/admin/digests").await["runs"]
            .as_array()
            .expect("runs")
            .clone()
    }

    fn deliveries(&self, run: &str) -> Vec<(SubscriberId, DeliveryStatus, i32)> {
        let run: RunId = run.parse().expect("a run id");
        let mut conn = self.pool().get().expect("conn");
        masthead::digest::store::deliveries_of(&mut conn, run).expect("query")
    }

    fn run_id_of(&self, date: &str) -> RunId {
        let mut conn = self.pool().get().expect("conn");
        masthead::digest::store::run_by_date(&mut conn, date)
            .expect("query")
            .expect("the run")
            .id
    }

    /// How many messages the SMTP server took for each recipient.
    fn received_per_address(&self) -> HashMap<String, usize> {
        let mut received: HashMap<String, usize> = HashMap::new();
        for mail in self.mailbox.all() {
            for to in mail.recipients {
                *received.entry(to).or_default() += 1;
            }
        }
        received
    }

    async fn run_of(&self, admin: &reqwest::Client, date: &str) -> Value {
        self.get_json(admin, &format!("/api/v1/admin/digests/{date}"))
            .await
    }

    /// Waits until the run of `date` has nothing left to send.
    async fn wait_until_done(&self, admin: &reqwest::Client, date: &str) -> Value {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
        loop {
            let response = self
                .get(admin, &format!("/api/v1/admin/digests/{date}"))
                .await;
            let run: Value = if response.status() == StatusCode::NOT_FOUND {
                Value::Null
            } else {
                response.json().await.expect("json")
            };
            if run["state"] == "completed" || run["state"] == "skipped" {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {date} is still {run}"
            );
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
    }
}

/// Asserts that `check` stays false while the worker ticks several times.
async fn stays_false(what: &str, mut check: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + StdDuration::from_millis(400);
    while tokio::time::Instant::now() < until {
        assert!(!check(), "{what}");
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a timestamp, not {value}"))
}

/// The raw header line, checked to be one line (not folded).
fn unfolded_header(mail: &ReceivedEmail, name: &str) -> String {
    let raw = String::from_utf8_lossy(&mail.raw).replace("\r\n", "\n");
    let mut lines = raw.lines();
    let prefix = format!("{name}:");
    let line = lines
        .by_ref()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} header in {raw}"))
        .to_owned();
    let next = lines.next().unwrap_or_default();
    assert!(
        !next.starts_with(' ') && !next.starts_with('\t'),
        "{name} is folded: {line}\n{next}"
    );
    line[prefix.len()..].trim().to_owned()
}

fn token_after<'a>(link: &'a str, marker: &str) -> &'a str {
    link.split(marker).nth(1).expect("the marker in the link")
}

#[tokio::test]
async fn the_run_is_created_once_at_local_send_time_across_a_daylight_saving_change() {
    // 27 March 2027 is on GMT; on the 28th London moves to BST at 01:00 UTC,
    // so 07:00 local is 07:00 UTC on the first day and 06:00 UTC on the second.
    let app = TestApp::spawn_at(utc(2027, 3, 27, 6, 58), london_at_seven).await;
    let admin = app.admin().await;
    let admin_runs = app.pool();
    let count_runs = || {
        let mut conn = admin_runs.get().expect("conn");
        masthead::digest::store::runs(&mut conn, 10)
            .expect("query")
            .len()
    };
    stays_false("no run before 07:00 GMT", || count_runs() > 0).await;

    app.set_time(utc(2027, 3, 27, 7, 0));
    eventually("the run of 27 March", || count_runs() == 1).await;
    let first = app.wait_until_done(&admin, "2027-03-27").await;
    assert_eq!(timestamp(&first["cutoff"]), utc(2027, 3, 27, 7, 0));
    assert_eq!(first["state"], "skipped", "no articles, quiet_day = skip");
    assert_eq!(first["counts"]["sent"], 0);

    app.set_time(utc(2027, 3, 28, 5, 59));
    stays_false("no run before 07:00 BST", || count_runs() > 1).await;
    app.set_time(utc(2027, 3, 28, 6, 0));
    eventually("the run of 28 March", || count_runs() == 2).await;
    let second = app.wait_until_done(&admin, "2027-03-28").await;
    assert_eq!(timestamp(&second["cutoff"]), utc(2027, 3, 28, 6, 0));
    assert_eq!(
        timestamp(&second["since"]),
        utc(2027, 3, 27, 7, 0),
        "a run starts where the previous one stopped"
    );

    // Another instance and a restart find the date taken.
    let other = app.another_instance(london_at_seven).await;
    app.clock.advance(Duration::hours(3));
    let app = app.restart(|_| {}).await;
    stays_false("still one run per date", || count_runs() > 2).await;
    let runs = app.runs(&admin).await;
    let dates: Vec<&str> = runs.iter().filter_map(|r| r["date"].as_str()).collect();
    assert_eq!(dates, ["2027-03-28", "2027-03-27"]);
    drop(other);
}

#[tokio::test]
async fn each_variant_gets_its_sections_and_excluded_subscribers_get_nothing() {
    let seed = "UH9vOmNj2q8Jm0XkC3rA1y0n9d7FWfyRk4r2ICjQ8XM=";
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 0), |settings| {
        london_at_seven(settings);
        settings.mail.dkim = Some(masthead::platform::config::DkimSettings {
            selector: "daily".into(),
            domain: "masthead.example".into(),
            algorithm: masthead::platform::config::DkimAlgorithm::Ed25519,
            private_key: seed.to_owned().into(),
        });
    })
    .await;
    let admin = app.admin().await;
    let editor = app.sections_and_editor().await;
    let ruling = app.published(&editor, "Patent ruling", "patents").await;
    app.clock.advance(Duration::minutes(1));
    app.published(&editor, "Second patent story", "patents")
        .await;
    app.clock.advance(Duration::minutes(1));
    app.published(&editor, "Trademark dispute", "trademarks")
        .await;

    app.subscriber_of("patents@example.com", &["patents"]).await;
    app.subscriber_of("both@example.com", &["patents", "trademarks"])
        .await;
    app.subscriber_of("copyright@example.com", &["copyright"])
        .await;
    let paused = app.subscriber_of("paused@example.com", &["patents"]).await;
    let pause = app
        .api
        .put(app.url(&format!(
            "/api/v1/newsletter/preferences?token={}",
            paused.token()
        )))
        .json(&json!({ "paused_until": "2027-02-01" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(pause.status(), StatusCode::OK);
    app.subscriber_of("refused@example.com", &["patents"]).await;
    let reported = app
        .post(
            &admin,
            "/api/v1/admin/bounces",
            json!({ "email": "refused@example.com", "type": "hard_bounce" }),
        )
        .await;
    assert_eq!(reported.status(), StatusCode::ACCEPTED);
    let reader = TestApp::browser();
    app.verified_reader(&reader, "ada@example.com").await;
    let joined = app
        .post(
            &reader,
            "/api/v1/newsletter/subscriptions",
            json!({ "email": "ada@example.com", "sections": ["trademarks"] }),
        )
        .await;
    assert_eq!(joined.status(), StatusCode::ACCEPTED);
    app.mailbox.wait_for("ada@example.com", 2).await;

    app.set_time(utc(2027, 1, 12, 7, 0));
    let run = app.wait_until_done(&admin, "2027-01-12").await;
    assert_eq!(run["articles"], 3);
    assert_eq!(run["counts"]["sent"], 3, "{run}");
    assert_eq!(run["counts"]["failed"], 0);
    let run_id = run["id"].as_str().expect("an id").to_owned();

    let patents = app
        .mailbox
        .with_subject("patents@example.com", "Daily")
        .await;
    let text = patents.text();
    let html = patents.html();
    assert!(text.contains("Patent ruling") && text.contains("Second patent story"));
    assert!(!text.contains("Trademark dispute"), "{text}");
    assert!(html.contains("Patent ruling") && !html.contains("Trademark dispute"));
    assert!(text.contains("Tuesday 12 January 2027"), "{text}");
    assert!(text.contains("Good morning,"), "{text}");
    assert_eq!(
        patents.subject(),
        "Masthead Daily, Tuesday 12 January 2027: Patent ruling"
    );

    let both = app.mailbox.with_subject("both@example.com", "Daily").await;
    let text = both.text();
    let order: Vec<usize> = ["Patent ruling", "Second patent story", "Trademark dispute"]
        .iter()
        .map(|title| text.find(title).expect("every headline"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

    let ada = app.mailbox.with_subject("ada@example.com", "Daily").await;
    assert!(ada.text().contains("Good morning, Ada Lovelace,"));
    assert!(ada.html().contains("Good morning, Ada Lovelace,"));
    assert!(ada.text().contains("Trademark dispute") && !ada.text().contains("Patent ruling"));

    for email in [
        "copyright@example.com",
        "paused@example.com",
        "refused@example.com",
    ] {
        assert_eq!(app.mailbox.to(email).len(), 2, "{email}: only sign-up mail");
    }

    // Headers: list, one-click unsubscribe (unfolded), a stable Message-ID,
    // and a DKIM signature over the unsubscribe headers.
    let subscriber = app.subscriber("patents@example.com").expect("stored");
    assert_eq!(
        patents.header("Message-ID").expect("a Message-ID"),
        format!("<digest.{run_id}.{}@masthead.example>", subscriber.id)
    );
    assert_eq!(
        patents.header("List-Id").expect("List-Id"),
        app.settings.newsletter.list_id
    );
    assert_eq!(
        unfolded_header(&patents, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let unsubscribe = unfolded_header(&patents, "List-Unsubscribe");
    let public = &app.settings.server.public_url;
    assert!(
        unsubscribe.starts_with(&format!("<{public}/unsubscribe/"))
            && unsubscribe.contains(&format!(
                ">, <mailto:{}?subject=unsubscribe%20",
                app.settings.newsletter.unsubscribe_mailto
            )),
        "{unsubscribe}"
    );
    let dkim = patents.header("DKIM-Signature").expect("signed");
    let signed: String = dkim
        .split(';')
        .map(str::trim)
        .find(|tag| tag.starts_with("h="))
        .expect("an h= tag")
        .to_ascii_lowercase();
    for header in [
        "list-unsubscribe",
        "list-unsubscribe-post",
        "from",
        "list-id",
    ] {
        assert!(
            signed.split([':', '=']).any(|h| h.trim() == header),
            "{header} not signed: {signed}"
        );
    }
    assert!(dkim.contains("d=masthead.example") && dkim.contains("s=daily"));

    // The links work: the article, the preferences, one-click unsubscribe.
    let article_link = patents.link_containing("/articles/");
    let slug = ruling["slug"].as_str().expect("a slug");
    assert!(article_link.ends_with(&format!("/articles/{slug}")));
    let prefs_link = patents.link_containing("/newsletter/preferences?token=");
    let token = token_after(&prefs_link, "token=");
    let prefs = app
        .get_json(
            &TestApp::browser(),
            &format!("/api/v1/newsletter/preferences?token={token}"),
        )
        .await;
    assert_eq!(prefs["email"], "patents@example.com");
    let unsubscribe_link = patents.link_containing("/unsubscribe/");
    let clicked = reqwest::Client::new()
        .post(app.url(&format!(
            "/unsubscribe/{}",
            token_after(&unsubscribe_link, "/unsubscribe/")
        )))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("sent");
    assert_eq!(clicked.status(), StatusCode::OK);
    assert_eq!(
        app.subscriber("patents@example.com")
            .expect("stored")
            .status,
        SubscriberStatus::Unsubscribed
    );
    let flipped = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &token[..token.len() - 1]);
    let refused = app
        .get(
            &TestApp::browser(),
            &format!("/api/v1/newsletter/preferences?token={forged}"),
        )
        .await;
    assert!(refused.status().is_client_error());

    let metrics = app
        .get(&TestApp::browser(), "/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("masthead_digest_messages_total{status=\"sent\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("masthead_digest_send_rate "), "{metrics}");
}

#[tokio::test]
async fn smtp_451_is_retried_until_delivered_and_550_fails_and_suppresses() {
    // Before the day's send time, so a run started now cuts off now.
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 30), |_| {}).await;
    let admin = app.admin().await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    let emails = [
        "busy-1@example.com".to_owned(),
        "bounce-1@example.com".to_owned(),
        "fine@example.com".to_owned(),
    ];
    let ids = app.seed_subscribers(&emails, &["patents"]);

    let started = app
        .post(&admin, "/api/v1/admin/digests/2027-01-12/send", json!({}))
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let run: Value = started.json().await.expect("json");
    let run_id = run["id"].as_str().expect("an id").to_owned();

    app.mailbox.wait_for("fine@example.com", 1).await;
    let delivery = |id: SubscriberId| {
        let mut conn = app.pool().get().expect("conn");
        masthead::digest::store::delivery(&mut conn, run_id.parse().expect("id"), id)
            .expect("query")
            .expect("a delivery")
    };
    eventually("the 550 is recorded", || {
        delivery(ids[1]).0 == DeliveryStatus::Failed
    })
    .await;
    let suppression = app.suppression("bounce-1@example.com").expect("suppressed");
    assert_eq!(suppression.reason, SuppressionReason::HardBounce);

    for attempt in 1..=BUSY_REFUSALS {
        let attempts = i32::try_from(attempt).expect("small");
        eventually("a refused attempt is recorded", || {
            // Recorded, not merely claimed for the next try.
            let (status, tried, error, in_flight) = delivery(ids[0]);
            status == DeliveryStatus::Pending && tried == attempts && error.is_some() && !in_flight
        })
        .await;
        assert!(app.mailbox.to("busy-1@example.com").is_empty());
        app.clock.advance(Duration::minutes(10));
    }
    app.mailbox.wait_for("busy-1@example.com", 1).await;
    let done = app.wait_until_done(&admin, "2027-01-12").await;
    assert_eq!(done["counts"]["sent"], 2, "{done}");
    assert_eq!(done["counts"]["failed"], 1, "{done}");
    assert_eq!(delivery(ids[0]).1, 3);
    assert_eq!(app.mailbox.to("busy-1@example.com").len(), 1);
    assert_eq!(app.mailbox.to("fine@example.com").len(), 1);

    // Starting it again sends nothing twice.
    let again = app
        .post(&admin, "/api/v1/admin/digests/2027-01-12/send", json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    stays_false("nothing is sent again", || {
        app.mailbox.to("fine@example.com").len() > 1
    })
    .await;
}

/// A date and clock where a run started by hand covers what the test
/// publishes: the digest's day is today in UTC, and it goes out at
/// midnight, so the cut-off is today 00:00 and the article was published
/// an hour before.
fn cli_day() -> (NaiveDate, DateTime<Utc>) {
    let today = Utc::now().date_naive();
    let midnight = today.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    (today, midnight - Duration::hours(1))
}

fn cli_schedule(settings: &mut Settings) {
    settings.digest.send_at = "00:00".to_owned().try_into().expect("a time");
    settings.digest.timezone = "UTC".to_owned().try_into().expect("a zone");
    settings.worker.enabled = false;
}

#[tokio::test]
async fn a_send_killed_mid_run_resumes_and_mails_everyone_once_or_at_most_in_flight_twice() {
    let (today, publish_at) = cli_day();
    let app = TestApp::spawn_at(publish_at, cli_schedule).await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    let emails: Vec<String> = (0..60).map(|i| format!("reader-{i}@example.com")).collect();
    app.seed_subscribers(&emails, &["patents", "trademarks"]);

    // Small batches, a slow server: the run is cut off half-way.
    let (concurrency, record_batch) = (2, 2);
    let envs = [
        ("MASTHEAD__DIGEST__SEND_AT", "00:00".to_owned()),
        ("MASTHEAD__DIGEST__TIMEZONE", "UTC".to_owned()),
        ("MASTHEAD__DIGEST__BATCH_SIZE", "10".to_owned()),
        ("MASTHEAD__DIGEST__CONCURRENCY", concurrency.to_string()),
        ("MASTHEAD__DIGEST__RECORD_BATCH", record_batch.to_string()),
        ("MASTHEAD__DIGEST__LEASE_SECS", "1".to_owned()),
    ];
    let date = today.format("%Y-%m-%d").to_string();
    app.mailbox.set_delay(StdDuration::from_millis(15));
    let mut send = app.command(&["digest", "send", "--date", &date]);
    send.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = send.spawn().expect("digest send starts");
    eventually("part of the run is sent", || app.mailbox.all().len() >= 15).await;
    child.kill().expect("killed");
    child.wait().expect("reaped");
    app.mailbox.set_delay(StdDuration::ZERO);

    let run = app.run_id_of(&date);
    let before = app.deliveries(&run.to_string());
    assert_eq!(before.len(), 60);
    let unsent = before
        .iter()
        .filter(|(_, s, _)| *s == DeliveryStatus::Pending)
        .count();
    assert!(unsent > 0, "the kill came too late to prove anything");

    let mut resume = app.command(&["digest", "send", "--date", &date]);
    resume.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    let out = resume.output().expect("digest send resumes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent 60, failed 0"), "{stdout}");

    let after = app.deliveries(&run.to_string());
    assert_eq!(after.len(), 60);
    assert!(after.iter().all(|(_, s, _)| *s == DeliveryStatus::Sent));
    let received = app.received_per_address();
    let twice = emails
        .iter()
        .map(|e| received.get(e).copied().unwrap_or(0))
        .inspect(|n| assert!((1..=2).contains(n), "received {n} times"))
        .filter(|n| *n == 2)
        .count();
    // In flight when killed: the sends under way, the results queued, and
    // those being written.
    let in_flight = concurrency + 2 * record_batch + 1;
    assert!(twice <= in_flight, "{twice} subscribers mailed twice");
}

#[tokio::test]
async fn two_workers_share_a_run_and_no_subscriber_is_mailed_twice() {
    let tweak = |settings: &mut Settings| {
        settings.digest.batch_size = 10;
    };
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 30), tweak).await;
    let other = app.another_instance(tweak).await;
    let admin = app.admin().await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    let emails: Vec<String> = (0..120)
        .map(|i| format!("shared-{i}@example.com"))
        .collect();
    app.seed_subscribers(&emails, &["patents"]);
    app.mailbox.set_delay(StdDuration::from_millis(2));

    let started = app
        .post(&admin, "/api/v1/admin/digests/2027-01-12/send", json!({}))
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let run = app.wait_until_done(&admin, "2027-01-12").await;
    assert_eq!(run["counts"]["sent"], 120, "{run}");
    eventually("all mail arrived", || app.mailbox.all().len() >= 120).await;
    let received = app.received_per_address();
    for email in &emails {
        assert_eq!(received.get(email), Some(&1), "{email}");
    }
    drop(other);
}

#[tokio::test]
async fn editors_preview_a_digest_and_only_admins_run_them() {
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 30), |_| {}).await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    app.published(&editor, "Trademark dispute", "trademarks")
        .await;

    let preview = app
        .get_json(
            &editor,
            "/api/v1/admin/digests/preview?date=2027-01-12&sections=patents",
        )
        .await;
    assert_eq!(preview["articles"], 1);
    let html = preview["html"].as_str().expect("html");
    assert!(html.contains("Patent ruling") && !html.contains("Trademark dispute"));
    assert!(preview["text"]
        .as_str()
        .expect("text")
        .contains("Patent ruling"));
    let all = app
        .get_json(&editor, "/api/v1/admin/digests/preview?date=2027-01-12")
        .await;
    assert_eq!(all["articles"], 2);
    assert_problem(
        app.get(
            &editor,
            "/api/v1/admin/digests/preview?date=2027-01-12&sections=sport",
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("sections"),
    )
    .await;
    assert_problem(
        app.get(&editor, "/api/v1/admin/digests/preview?date=12.1.2027")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("date"),
    )
    .await;

    assert_problem(
        app.get(&editor, "/api/v1/admin/digests").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    assert_problem(
        app.post(&editor, "/api/v1/admin/digests/2027-01-12/send", json!({}))
            .await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    let admin = app.admin().await;
    assert_problem(
        app.get(&admin, "/api/v1/admin/digests/2027-01-12").await,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    assert_problem(
        app.post(&admin, "/api/v1/admin/digests/2027-01-13/send", json!({}))
            .await,
        StatusCode::CONFLICT,
        None,
    )
    .await;
    assert!(app.runs(&admin).await.is_empty());
}

#[tokio::test]
async fn the_command_line_writes_a_preview() {
    let (today, publish_at) = cli_day();
    let app = TestApp::spawn_at(publish_at, cli_schedule).await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    app.published(&editor, "Trademark dispute", "trademarks")
        .await;
    let out = tempfile::tempdir().expect("a folder");
    let date = today.format("%Y-%m-%d").to_string();
    let mut preview = app.command(&[
        "digest",
        "preview",
        "--date",
        &date,
        "--sections",
        "trademarks",
        "--out",
        &out.path().display().to_string(),
    ]);
    preview.envs([
        ("MASTHEAD__DIGEST__SEND_AT", "00:00"),
        ("MASTHEAD__DIGEST__TIMEZONE", "UTC"),
    ]);
    let result = preview.output().expect("runs");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let html_path = out.path().join(format!("digest-{date}.html"));
    let text_path = out.path().join(format!("digest-{date}.txt"));
    assert!(
        stdout.contains(&html_path.display().to_string()),
        "{stdout}"
    );
    assert!(
        stdout.contains(&text_path.display().to_string()),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&html_path).expect("the HTML file");
    let text = std::fs::read_to_string(&text_path).expect("the text file");
    assert!(html.contains("Trademark dispute") && !html.contains("Patent ruling"));
    assert!(text.contains("Trademark dispute") && !text.contains("Patent ruling"));
}

#[tokio::test]
async fn finished_runs_keep_their_counts_after_their_delivery_rows_are_deleted() {
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 30), |_| {}).await;
    let admin = app.admin().await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    let emails: Vec<String> = ["kept-1", "kept-2", "kept-3", "bounce-kept"]
        .iter()
        .map(|name| format!("{name}@example.com"))
        .collect();
    app.seed_subscribers(&emails, &["patents"]);
    let started = app
        .post(&admin, "/api/v1/admin/digests/2027-01-12/send", json!({}))
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let done = app.wait_until_done(&admin, "2027-01-12").await;
    let run_id: RunId = done["id"].as_str().expect("id").parse().expect("run id");
    let expected = json!({ "pending": 0, "sent": 3, "failed": 1, "skipped": 0 });
    assert_eq!(done["counts"], expected, "{done}");
    let settled = || {
        let mut conn = app.pool().get().expect("conn");
        masthead::digest::store::run(&mut conn, run_id)
            .expect("query")
            .expect("the run")
            .settled_at
    };
    assert!(settled().is_none(), "settled before housekeeping ran");

    // The worker's hourly housekeeping settles the run; its rows stay.
    app.clock.advance(Duration::minutes(61));
    eventually("the run to be settled", || settled().is_some()).await;
    assert_eq!(app.deliveries(&run_id.to_string()).len(), 4);

    // Past digest.keep_deliveries_days the rows go, the figures stay.
    app.clock.advance(Duration::days(
        i64::from(app.settings.digest.keep_deliveries_days) + 1,
    ));
    eventually("the old deliveries to be deleted", || {
        app.deliveries(&run_id.to_string()).is_empty()
    })
    .await;
    // A month on, the first session has expired.
    let admin = app.admin().await;
    let run = app.run_of(&admin, "2027-01-12").await;
    assert_eq!(run["counts"], expected, "{run}");
    assert_eq!(run["state"], "completed", "{run}");
    let metrics = app
        .get(&TestApp::browser(), "/metrics")
        .await
        .text()
        .await
        .expect("text");
    for line in [
        "masthead_digest_messages_total{status=\"sent\"} 3",
        "masthead_digest_messages_total{status=\"failed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn an_interrupted_send_gives_back_what_it_did_not_try_and_mails_nobody_twice() {
    let (today, publish_at) = cli_day();
    let app = TestApp::spawn_at(publish_at, cli_schedule).await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    let emails: Vec<String> = (0..60).map(|i| format!("halted-{i}@example.com")).collect();
    app.seed_subscribers(&emails, &["patents"]);

    // Leases far longer than the test: only giving the claims back lets
    // the second command carry on straight away.
    let envs = [
        ("MASTHEAD__DIGEST__BATCH_SIZE", "10"),
        ("MASTHEAD__DIGEST__CONCURRENCY", "2"),
        ("MASTHEAD__DIGEST__LEASE_SECS", "3600"),
    ];
    let date = today.format("%Y-%m-%d").to_string();
    app.mailbox.set_delay(StdDuration::from_millis(15));
    let mut send = app.command(&["digest", "send", "--date", &date]);
    send.envs(envs);
    send.stdout(std::process::Stdio::piped());
    send.stderr(std::process::Stdio::piped());
    let child = send.spawn().expect("digest send starts");
    eventually("part of the run is sent", || app.mailbox.all().len() >= 15).await;
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupt.success());
    let out = child.wait_with_output().expect("it stops");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "an interrupted send says so: {stdout}\n{stderr}"
    );
    assert!(stderr.contains("interrupted with"), "{stderr}");
    app.mailbox.set_delay(StdDuration::ZERO);

    let run = app.run_id_of(&date);
    let halted = app.deliveries(&run.to_string());
    let pending: Vec<_> = halted
        .iter()
        .filter(|(_, s, _)| *s == DeliveryStatus::Pending)
        .collect();
    assert!(
        !pending.is_empty(),
        "the interrupt came too late to prove anything"
    );
    assert!(
        pending.iter().all(|(_, _, attempts)| *attempts == 0),
        "untried deliveries are given back uncounted: {pending:?}"
    );
    let sent = halted.len() - pending.len();
    assert_eq!(app.mailbox.all().len(), sent, "what went out is recorded");

    let mut resume = app.command(&["digest", "send", "--date", &date]);
    resume.envs(envs);
    resume.stdout(std::process::Stdio::piped());
    let mut resumed = resume.spawn().expect("digest send resumes");
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    while resumed.try_wait().expect("status").is_none() {
        if std::time::Instant::now() > deadline {
            resumed.kill().expect("killed");
            let out = resumed.wait_with_output().expect("output");
            panic!(
                "the resumed send waited on leases that should have been given back: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let out = resumed.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("sent 60, failed 0"), "{stdout}");
    let received = app.received_per_address();
    for email in &emails {
        assert_eq!(received.get(email), Some(&1), "{email}");
    }
}

#[tokio::test]
async fn a_digest_that_bounces_later_is_not_sent_the_next_day() {
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 0), london_at_seven).await;
    let admin = app.admin().await;
    let editor = app.sections_and_editor().await;
    app.published(&editor, "Patent ruling", "patents").await;
    app.subscriber_of("ada@example.com", &["patents"]).await;
    app.subscriber_of("lin@example.com", &["patents"]).await;

    app.set_time(utc(2027, 1, 12, 7, 0));
    let run = app.wait_until_done(&admin, "2027-01-12").await;
    assert_eq!(run["counts"]["sent"], 2, "{run}");
    let digest = app.mailbox.with_subject("ada@example.com", "Daily").await;

    // The relay took it; the report comes back later, naming an address
    // the mail was forwarded to. Its return path says whose digest it was.
    let report = crate::ingest::sample(
        "postfix_hard.eml",
        &digest.sender,
        "ada.old@forwarder.example",
    );
    let said = crate::ingest::ingest(&app, &[], &report);
    assert_eq!(
        said.trim(),
        "hard_bounce at example.com (by its return path): suppressed"
    );
    let detail = app
        .suppression("ada@example.com")
        .expect("suppressed")
        .detail
        .expect("evidence");
    assert!(detail.contains("digest run"), "{detail}");

    app.set_time(utc(2027, 1, 12, 12, 0));
    app.published(&editor, "Second patent story", "patents")
        .await;
    app.set_time(utc(2027, 1, 13, 7, 0));
    app.wait_until_done(&admin, "2027-01-13").await;
    assert_eq!(
        app.mailbox.to("lin@example.com").len(),
        4,
        "lin: two digests"
    );
    assert_eq!(
        app.mailbox.to("ada@example.com").len(),
        3,
        "ada: sign-up mail and the first digest only"
    );
}
