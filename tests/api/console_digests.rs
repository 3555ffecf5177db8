//! The digest console: the runs with their counts, each date's variants as
//! subscribers see them (HTML and text), and the form that starts a date,
//! which answers before the worker has created a single delivery.

use chrono::{DateTime, TimeZone, Utc};
use masthead::digest::DeliveryStatus;
use masthead::digest::RunId;
use masthead::newsletter::SubscriberId;
use masthead::platform::audit::model::SubjectKind;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::helpers::{article, header, html_unescape, location, TestApp, PASSWORD};

const LIST: &str = "/admin/digests";
/// Half an hour before the digest's time (07:00 in London, GMT in
/// January): a run started now cuts off now, after the articles.
const DATE: &str = "2027-01-12";

fn morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 12, 6, 30, 0)
        .single()
        .expect("a valid instant")
}

/// A patents story and a trademarks story, published now.
async fn the_news(app: &TestApp) {
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    for (title, section) in [
        ("Patent ruling", "patents"),
        ("Trademark dispute", "trademarks"),
    ] {
        let draft = app
            .draft(&editor, article(title, section, &[], "The full story."))
            .await;
        app.publish(&editor, &draft).await;
    }
}

/// Two read patents only (one of them cannot take mail), one reads both.
fn readers(app: &TestApp) {
    app.seed_subscribers(&["pat@example.com", "bounce-pat@example.com"], &["patents"]);
    app.seed_subscribers(&["both@example.com"], &["patents", "trademarks"]);
}

fn run_id(app: &TestApp, date: &str) -> Option<RunId> {
    let mut conn = app.pool().get().expect("conn");
    masthead::digest::store::run_by_date(&mut conn, date)
        .expect("query")
        .map(|run| run.id)
}

fn deliveries(app: &TestApp, run: RunId) -> Vec<(SubscriberId, DeliveryStatus, i32)> {
    let mut conn = app.pool().get().expect("conn");
    masthead::digest::store::deliveries_of(&mut conn, run).expect("query")
}

/// A page as the admin sees it, with its entities undone.
async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let (status, html) = app.page(client, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    html_unescape(&html)
}

async fn state_of(app: &TestApp, admin: &reqwest::Client, date: &str) -> Value {
    app.get_json(admin, &format!("/api/v1/admin/digests/{date}"))
        .await
}

async fn wait_until_done(app: &TestApp, admin: &reqwest::Client, date: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let run = state_of(app, admin, date).await;
        if run["state"] == "completed" {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {run}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The row of the runs table for `date`.
fn row<'a>(html: &'a str, date_label: &str) -> &'a str {
    let start = html
        .find(&format!(">{date_label}</a></td>"))
        .unwrap_or_else(|| panic!("no row for {date_label} in {html}"));
    let end = html[start..].find("</tr>").expect("the row's end") + start;
    &html[start..end]
}

#[tokio::test]
async fn the_list_and_a_dates_page_show_each_run_with_its_counts() {
    let app = TestApp::spawn_at(morning(), |_| {}).await;
    let admin = app.admin().await;
    the_news(&app).await;
    readers(&app);

    let list = page(&app, &admin, LIST).await;
    assert!(list.contains("<h1>Daily digests</h1>"), "{list}");
    assert!(list.contains("Today's digest has not started"), "{list}");
    assert!(
        list.contains("value=\"2027-01-12\""),
        "today is the form's date: {list}"
    );
    assert!(list.contains("No digest has run yet"), "{list}");

    let started = app
        .submit(&admin, LIST, "/admin/digests/start", &[("date", DATE)])
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&started), format!("{LIST}/{DATE}"));
    let done = wait_until_done(&app, &admin, DATE).await;
    assert_eq!(
        done["counts"],
        json!({ "pending": 0, "sent": 2, "failed": 1, "skipped": 0 }),
        "{done}"
    );
    assert!(done["finished_at"].is_string(), "{done}");
    assert_eq!(done["percent_done"], 100);

    let list = page(&app, &admin, LIST).await;
    let today = row(&list, "12 January 2027");
    for cell in [
        "Completed",
        "data-label=\"Articles\">2<",
        "data-label=\"Recipients\">3<",
        "data-label=\"Sent\">2<",
        "data-label=\"Failed\"><strong>1</strong>",
        "data-label=\"Skipped\">0<",
        "data-label=\"Waiting\">0<",
        "12 January 2027, 06:30 UTC",
    ] {
        assert!(today.contains(cell), "{cell} missing from {today}");
    }
    assert!(!today.contains("Not yet"), "it has finished: {today}");
    assert!(!list.contains("Refresh"), "nothing to follow: {list}");

    let detail = page(&app, &admin, &format!("{LIST}/{DATE}")).await;
    assert!(
        detail.contains("<h1>Digest of Tuesday 12 January 2027</h1>"),
        "{detail}"
    );
    for figure in [
        "<dt>Recipients</dt><dd>3</dd>",
        "<dt>Sent</dt><dd>2</dd>",
        "<dt>Failed</dt><dd>1</dd>",
    ] {
        assert!(detail.contains(figure), "{figure} missing from {detail}");
    }
    assert!(detail.contains("2 versions"), "{detail}");
    assert!(
        detail.contains("started the digest of 2027-01-12"),
        "the history: {detail}"
    );
    assert!(detail.contains("Grace Hopper"), "who started it: {detail}");
}

#[tokio::test]
async fn a_dates_page_previews_each_variant_as_html_and_text() {
    let app = TestApp::spawn_at(morning(), |_| {}).await;
    let admin = app.admin().await;
    the_news(&app).await;
    readers(&app);
    let path = format!("{LIST}/{DATE}");

    // Before it starts: what the subscribers would get.
    let response = app.get(&admin, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let policy = header(&response, "content-security-policy");
    assert!(policy.contains("frame-src 'self'"), "{policy}");
    let detail = html_unescape(&response.text().await.expect("html"));
    assert!(detail.contains("This digest has not started"), "{detail}");
    assert!(
        detail.contains("as today's confirmed subscribers would get them"),
        "{detail}"
    );
    let patents = detail
        .find("<h3 id=\"variant-1\">Patents</h3>")
        .expect("the patents variant first: 2 subscribers");
    let both = detail
        .find("<h3 id=\"variant-2\">Patents and Trademarks</h3>")
        .expect("the other variant");
    assert!(patents < both);
    let texts: Vec<&str> = detail
        .split("<pre class=\"preview\">")
        .skip(1)
        .map(|rest| rest.split("</pre>").next().expect("the text's end"))
        .collect();
    assert_eq!(texts.len(), 2, "{detail}");
    assert!(
        texts[0].contains("Patent ruling") && !texts[0].contains("Trademark dispute"),
        "{}",
        texts[0]
    );
    assert!(
        texts[1].contains("Patent ruling") && texts[1].contains("Trademark dispute"),
        "{}",
        texts[1]
    );
    assert!(
        detail.contains(
            "Subject: <strong>Masthead Daily, Tuesday 12 January 2027: Patent ruling</strong>"
        ),
        "{detail}"
    );
    for key in ["patents", "patents+trademarks"] {
        let src = format!("src=\"/admin/digests/{DATE}/preview/{key}.html\"");
        assert!(detail.contains(&src), "{src} missing from {detail}");
    }
    assert!(
        detail.contains(" sandbox=\"allow-same-origin\" "),
        "the frame is sandboxed: {detail}"
    );

    // Each frame's HTML, as the email carries it, under its own policy.
    let html_of = |key: &str| {
        let client = admin.clone();
        let url = app.url(&format!("{LIST}/{DATE}/preview/{key}.html"));
        async move { client.get(url).send().await.expect("sent") }
    };
    let framed = html_of("patents").await;
    assert_eq!(framed.status(), StatusCode::OK);
    let policy = header(&framed, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "frame-ancestors 'self'",
        "sandbox allow-same-origin",
    ] {
        assert!(
            policy.contains(directive),
            "{directive} missing from {policy}"
        );
    }
    assert_eq!(header(&framed, "x-frame-options"), "SAMEORIGIN");
    let email = framed.text().await.expect("html");
    assert!(
        email.contains("Patent ruling") && !email.contains("Trademark dispute"),
        "{email}"
    );
    assert!(
        email.contains("style=\""),
        "the email's own inline styles: {email}"
    );
    let both = html_of("patents+trademarks")
        .await
        .text()
        .await
        .expect("html");
    assert!(both.contains("Patent ruling") && both.contains("Trademark dispute"));
    assert_eq!(html_of("sport").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&admin, &format!("{LIST}/12.1.2027")).await.status(),
        StatusCode::NOT_FOUND
    );

    // The JSON twin tells the same.
    let twin = app
        .get_json(&admin, &format!("/api/v1/admin/digests/{DATE}/variants"))
        .await;
    assert_eq!(twin["run"], Value::Null);
    assert_eq!(twin["variants_from"], "subscribers");
    assert_eq!(twin["variants"][0]["sections"], json!(["patents"]));
    assert_eq!(twin["variants"][0]["recipients"], 2);
    assert_eq!(twin["variants"][1]["recipients"], 1);

    // Once it has run: the variants of its deliveries.
    let started = app
        .post(
            &admin,
            &format!("/api/v1/admin/digests/{DATE}/send"),
            json!({}),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    wait_until_done(&app, &admin, DATE).await;
    let twin = app
        .get_json(&admin, &format!("/api/v1/admin/digests/{DATE}/variants"))
        .await;
    assert_eq!(twin["variants_from"], "deliveries");
    assert_eq!(twin["run"]["state"], "completed");
    assert_eq!(twin["variants"][0]["recipients"], 2);
    let detail = page(&app, &admin, &path).await;
    assert!(
        detail.contains("2 versions: each subscriber gets the sections they chose"),
        "{detail}"
    );

    // Admins only; readers and editors are turned away.
    let editor = app.editor().await;
    for client in [&editor, &app.api] {
        for path in [LIST.to_owned(), path.clone()] {
            let (status, _) = app.page(client, &path).await;
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::SEE_OTHER,
                "{path}: {status}"
            );
        }
    }
    let (status, _) = app.page(&editor, LIST).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn starting_a_digest_answers_before_its_fan_out_and_a_worker_sends_it() {
    // No worker in this instance: whatever a start does happens in the
    // request, so what it leaves undone is what the request did not wait for.
    let app = TestApp::spawn_at(morning(), |settings| settings.worker.enabled = false).await;
    let admin = app.admin().await;
    let me = app.get_json(&admin, "/api/v1/me").await;
    the_news(&app).await;
    readers(&app);

    let started = app
        .submit(&admin, LIST, "/admin/digests/start", &[("date", DATE)])
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let run = run_id(&app, DATE).expect("the run exists");
    assert!(
        deliveries(&app, run).is_empty(),
        "the request created no delivery"
    );
    assert!(app.mailbox.all().is_empty());
    let detail = page(&app, &admin, &location(&started)).await;
    assert!(
        detail.contains("The digest of Tuesday 12 January 2027 is started"),
        "the flash: {detail}"
    );
    assert!(detail.contains(">Preparing</span>"), "{detail}");
    assert!(
        detail.contains(&format!("<a href=\"{LIST}/{DATE}\">Refresh</a>")),
        "{detail}"
    );
    let list = page(&app, &admin, LIST).await;
    assert!(
        row(&list, "12 January 2027").contains("Preparing"),
        "{list}"
    );
    assert!(
        list.contains("<a href=\"/admin/digests\">Refresh</a>"),
        "{list}"
    );

    // The JSON API starts the same way: 202 with the run, nothing created.
    let again = app
        .post(
            &admin,
            &format!("/api/v1/admin/digests/{DATE}/send"),
            json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let view: Value = again.json().await.expect("json");
    assert_eq!(view["state"], "preparing", "{view}");
    assert_eq!(view["counts"]["pending"], 0, "{view}");
    assert!(deliveries(&app, run).is_empty());

    // Every start is in the audit trail, by whom.
    let trail = {
        let mut conn = app.pool().get().expect("conn");
        masthead::platform::audit::store::of_subject(
            &mut conn,
            SubjectKind::DigestRun,
            &run.to_string(),
        )
        .expect("query")
    };
    assert_eq!(trail.len(), 2, "{trail:?}");
    for entry in &trail {
        assert_eq!(entry.action, "digest.start");
        assert_eq!(
            entry.actor_id.map(|id| id.to_string()).as_deref(),
            me["id"].as_str()
        );
    }
    // Both at the same instant of the test's clock: in either order.
    let mut details: Vec<&str> = trail.iter().filter_map(|e| e.detail.as_deref()).collect();
    details.sort_unstable();
    assert_eq!(
        details,
        [
            "resumed the digest of 2027-01-12; no retry was waiting",
            "started the digest of 2027-01-12",
        ]
    );

    // A worker (another instance, as `masthead worker` would be) picks the
    // run up, creates its deliveries and sends them.
    let worker = app
        .another_instance(|settings| settings.worker.enabled = true)
        .await;
    app.mailbox.wait_for("pat@example.com", 1).await;
    app.mailbox.wait_for("both@example.com", 1).await;
    let both = app.mailbox.to("both@example.com").remove(0);
    assert!(both.text().contains("Trademark dispute"));
    let done = wait_until_done(&app, &admin, DATE).await;
    assert_eq!(done["counts"]["sent"], 2, "{done}");
    assert_eq!(deliveries(&app, run).len(), 3);
    let list = page(&app, &admin, LIST).await;
    assert!(
        row(&list, "12 January 2027").contains("Completed"),
        "{list}"
    );
    drop(worker);
}

#[tokio::test]
async fn the_start_form_explains_a_date_it_cannot_start() {
    let app = TestApp::spawn_at(morning(), |settings| settings.worker.enabled = false).await;
    let admin = app.admin().await;

    for (date, message) in [
        ("2027-01-13", "Choose today or an earlier date: Wednesday 13 January 2027 has not begun yet in Europe/London"),
        ("12.1.2027", "A date is written YYYY-MM-DD"),
    ] {
        let answer = app
            .submit(&admin, LIST, "/admin/digests/start", &[("date", date)])
            .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{date}");
        let html = html_unescape(&answer.text().await.expect("html"));
        assert!(html.contains("<title>Error: Daily digests"), "{html}");
        assert!(html.contains("There is a problem"), "{html}");
        assert!(html.contains(&format!("<a href=\"#date\">{message}.</a>")), "{html}");
        assert!(html.contains("aria-invalid=\"true\""), "{html}");
        assert!(html.contains(&format!("value=\"{date}\"")), "the input is kept: {html}");
    }
    assert!(run_id(&app, "2027-01-13").is_none());

    let started = app
        .submit(&admin, LIST, "/admin/digests/start", &[("date", DATE)])
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let earlier = app
        .submit(
            &admin,
            LIST,
            "/admin/digests/start",
            &[("date", "2027-01-11")],
        )
        .await;
    assert_eq!(earlier.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_unescape(&earlier.text().await.expect("html"));
    assert!(html.contains("would send its articles again"), "{html}");
    assert!(run_id(&app, "2027-01-11").is_none());

    // A form without its token changes nothing.
    let forged = app
        .post_form(
            &admin,
            "/admin/digests/start",
            "1.00",
            &[("date", "2027-01-10")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

/// Waits until the digest has been refused `refusals` times for `email`,
/// and the refusal recorded: the delivery waits for its retry.
async fn wait_for_refusals(app: &TestApp, email: &str, refusals: i32) {
    let subscriber = app.subscriber(email).expect("stored").id;
    let run = run_id(app, DATE).expect("the run");
    let refused = || {
        let mut conn = app.pool().get().expect("conn");
        masthead::digest::store::delivery(&mut conn, run, subscriber)
            .expect("query")
            .is_some_and(|(status, attempts, error, in_flight)| {
                status == DeliveryStatus::Pending
                    && attempts == refusals
                    && error.is_some()
                    && !in_flight
            })
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !refused() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{email} not refused {refusals} times"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_admin_starts_todays_digest_in_the_browser_follows_and_resumes_it() {
    let app = TestApp::spawn_at(morning(), |_| {}).await;
    let Some(browser) = Browser::start(
        "an_admin_starts_todays_digest_in_the_browser_follows_and_resumes_it",
        &app,
    )
    .await
    else {
        return;
    };
    the_news(&app).await;
    readers(&app);
    // Refused for now (451) twice, and retried only minutes later.
    let busy = "busy-reader@example.com";
    app.seed_subscribers(&[busy], &["patents"]);
    let email = "chief@example.com";
    let api = TestApp::browser();
    app.privileged(&api, email, "admin").await;

    browser.goto(&format!("/login?next={LIST}")).await;
    browser.fill_label("Email address", email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser
        .wait_for_text("Today's digest has not started")
        .await;
    browser.screenshot("console-digests-empty").await;
    browser.axe("the digests page before a run").await;

    // Started from the form, with today's date already in it.
    browser.click_button("Start digest").await;
    browser.wait_for_text("is started").await;
    assert_eq!(browser.current_path().await, format!("{LIST}/{DATE}"));
    wait_for_refusals(&app, busy, 1).await;
    let run = state_of(&app, &api, DATE).await;
    assert_eq!(
        run["counts"],
        json!({ "pending": 1, "sent": 2, "failed": 1, "skipped": 0 }),
        "{run}"
    );

    // Listed, with how far it has got: 3 of 4 have their result.
    browser.goto(LIST).await;
    let text = browser.wait_for_text("75% done").await;
    assert!(
        text.contains("2 sent, 1 failed and 0 skipped of 4; 1 waiting"),
        "{text}"
    );
    assert!(text.contains("Refresh"), "{text}");
    browser.screenshot("console-digests").await;
    browser.axe("the digests page").await;

    // Its page: the figures, and each variant as HTML and text.
    browser
        .find(&format!("a[href=\"{LIST}/{DATE}\"]"))
        .await
        .click()
        .await;
    let text = browser.wait_for_text("Text part").await;
    assert!(text.contains("Patent ruling"), "{text}");
    assert!(text.contains("75% done"), "{text}");
    browser.screenshot("console-digest").await;
    browser.axe("a digest's page").await;

    // Resuming makes the waiting retry due now: refused once more, then
    // accepted.
    browser.click_button("Resume digest").await;
    browser
        .wait_for_text("1 message waiting for a retry is due now")
        .await;
    wait_for_refusals(&app, busy, 2).await;
    browser.click_button("Resume digest").await;
    browser
        .wait_for_text("1 message waiting for a retry is due now")
        .await;
    app.mailbox.wait_for(busy, 1).await;
    wait_until_done(&app, &api, DATE).await;
    browser.goto(&format!("{LIST}/{DATE}")).await;
    let text = browser.wait_for_text("COMPLETED").await;
    assert!(
        text.contains("3 sent, 1 failed and 0 skipped of 4"),
        "{text}"
    );
    assert!(!text.contains("Resume digest"), "{text}");

    let frame = browser.find("iframe.email-preview").await;
    let src = frame.attribute("src").await.expect("the frame's address");
    browser.goto(&src).await;
    browser.wait_for_text("Patent ruling").await;
}
