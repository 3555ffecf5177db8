use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{article, assert_problem, polled, TestApp, PASSWORD};

const LONG_BODY: &str = "The opening paragraph sets out the facts of the case in plain words.\n\n\
The second paragraph explains what the court decided and on which grounds it relied.\n\n\
The third paragraph reports what the parties said after the hearing.\n\n\
The closing paragraph, for subscribers only, says what happens next: zebra-crossing.";

fn slugs(listing: &Value) -> Vec<String> {
    listing["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| a["slug"].as_str().expect("slug").to_owned())
        .collect()
}

#[tokio::test]
async fn only_editors_write_articles() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let body = article("A ruling", "patents", &["appeals"], "Text.");

    let anonymous = TestApp::browser();
    assert_problem(
        app.post(&anonymous, "/api/v1/articles", body.clone()).await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    assert_problem(
        app.post(&reader, "/api/v1/articles", body.clone()).await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    assert_problem(
        app.post(&reader, "/api/v1/sections", json!({ "name": "Gossip" }))
            .await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;

    let draft = app.draft(&editor, body).await;
    assert_eq!(draft["status"], "draft");
    let id = draft["id"].as_str().expect("id");
    let patch = reader
        .patch(app.url(&format!("/api/v1/articles/{id}")))
        .json(&json!({ "title": "Hijacked" }))
        .send()
        .await
        .expect("sent");
    assert_problem(patch, StatusCode::FORBIDDEN, None).await;
    let publish = app
        .post(
            &reader,
            &format!("/api/v1/articles/{id}/publish"),
            json!({}),
        )
        .await;
    assert_problem(publish, StatusCode::FORBIDDEN, None).await;
    let drafts = app.get(&reader, "/api/v1/articles?status=draft").await;
    assert_problem(drafts, StatusCode::FORBIDDEN, None).await;
}

#[tokio::test]
async fn invalid_articles_name_their_fields() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let response = app
        .post(&editor, "/api/v1/articles", json!({ "title": " ", "standfirst": "s", "body": "", "section": "nowhere", "tags": ["ok", ""] }))
        .await;
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, Some("title")).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"body") && fields.contains(&"tags"),
        "{fields:?}"
    );

    let unknown_section = app
        .post(
            &editor,
            "/api/v1/articles",
            article("T", "nowhere", &[], "B"),
        )
        .await;
    assert_problem(
        unknown_section,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("section"),
    )
    .await;
}

#[tokio::test]
async fn slugs_are_unique_follow_drafts_and_stay_once_published() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Trademarks").await;
    let first = app
        .draft(
            &editor,
            article("Café wins mark dispute", "trademarks", &[], "Body."),
        )
        .await;
    let second = app
        .draft(
            &editor,
            article("Café wins mark dispute", "trademarks", &[], "Body."),
        )
        .await;
    assert_eq!(first["slug"], "cafe-wins-mark-dispute");
    assert_eq!(second["slug"], "cafe-wins-mark-dispute-2");

    let path = format!("/api/v1/articles/{}", second["id"].as_str().expect("id"));
    let renamed: Value = editor
        .patch(app.url(&path))
        .json(&json!({ "title": "Bistro loses appeal" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(renamed["slug"], "bistro-loses-appeal");

    app.publish(&editor, &renamed).await;
    let retitled: Value = editor
        .patch(app.url(&path))
        .json(&json!({ "title": "Bistro loses final appeal", "tags": ["appeals"] }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        retitled["slug"], "bistro-loses-appeal",
        "published slugs never change"
    );
    assert_eq!(retitled["title"], "Bistro loses final appeal");

    let history = app.get_json(&editor, &format!("{path}/revisions")).await;
    let revisions = history["revisions"].as_array().expect("revisions");
    assert_eq!(revisions.len(), 1, "only edits after publication are kept");
    assert_eq!(revisions[0]["changed_fields"], json!(["title", "tags"]));
    assert_eq!(revisions[0]["previous"]["title"], "Bistro loses appeal");
    assert!(revisions[0]["editor_id"].is_string());

    let again = app
        .post(&editor, &format!("{path}/publish"), json!({}))
        .await;
    assert_problem(again, StatusCode::CONFLICT, None).await;
}

#[tokio::test]
async fn a_scheduled_article_appears_only_when_its_time_comes() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let draft = app
        .draft(
            &editor,
            article("Embargoed ruling", "patents", &[], "Body."),
        )
        .await;
    let at = app.now() + Duration::hours(2);
    let path = format!(
        "/api/v1/articles/{}/publish",
        draft["id"].as_str().expect("id")
    );
    let scheduled: Value = app
        .post(&editor, &path, json!({ "at": at }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(scheduled["status"], "scheduled");

    let reader = TestApp::browser();
    assert!(slugs(&app.get_json(&reader, "/api/v1/articles").await).is_empty());
    assert_problem(
        app.get(&reader, "/api/v1/articles/embargoed-ruling").await,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;

    app.clock.advance(Duration::hours(1));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        slugs(&app.get_json(&reader, "/api/v1/articles").await).is_empty(),
        "not before its time"
    );

    app.clock.advance(Duration::hours(1));
    let listed = polled(
        || async { slugs(&app.get_json(&reader, "/api/v1/articles").await) },
        |listed| !listed.is_empty(),
    )
    .await;
    assert_eq!(listed, ["embargoed-ruling"]);
    let read = app
        .get_json(&reader, "/api/v1/articles/embargoed-ruling")
        .await;
    assert_eq!(
        read["published_at"]
            .as_str()
            .map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().expect("a time")),
        Some(at)
    );
}

#[tokio::test]
async fn markup_that_could_run_script_is_removed() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Copyright").await;
    let body = "Fine words.\n\n<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n[click me](javascript:alert(1)) and [ok](https://example.com/ok)";
    let draft = app
        .draft(&editor, article("Hostile markup", "copyright", &[], body))
        .await;
    app.publish(&editor, &draft).await;
    let read = app
        .get_json(&editor, "/api/v1/articles/hostile-markup")
        .await;
    let html = read["body_html"].as_str().expect("html");
    assert!(html.contains("Fine words."), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "shown as text: {html}"
    );
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("href=\"https://example.com/ok\""), "{html}");
}

#[tokio::test]
async fn search_finds_articles_by_words_in_their_body() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    for (title, body) in [
        (
            "Separator claims narrowed",
            "The board found the polymer separators obvious.",
        ),
        (
            "Vaccine dispute settles",
            "Both parties agreed terms before the trial date.",
        ),
        (
            "Seed patents upheld",
            "Plant breeders welcomed the decision on drought tolerance.",
        ),
    ] {
        let draft = app
            .draft(&editor, article(title, "patents", &[], body))
            .await;
        app.publish(&editor, &draft).await;
    }
    let reader = TestApp::browser();
    let found = app.get_json(&reader, "/api/v1/articles?q=polymer").await;
    assert_eq!(slugs(&found), ["separator-claims-narrowed"]);
    let found = app
        .get_json(&reader, "/api/v1/articles?q=drought%20breeders")
        .await;
    assert_eq!(slugs(&found), ["seed-patents-upheld"]);
    let found = app
        .get_json(&reader, "/api/v1/articles?q=%22trial%22%20(*")
        .await;
    assert_eq!(
        slugs(&found),
        ["vaccine-dispute-settles"],
        "search syntax from readers is taken as words"
    );
    let none = app.get_json(&reader, "/api/v1/articles?q=kangaroo").await;
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn filters_by_section_and_tag() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Designs").await;
    for (title, section, tags) in [
        ("P one", "patents", vec!["chairs"]),
        ("D one", "designs", vec!["Chairs", "lamps"]),
        ("D two", "designs", vec![]),
    ] {
        let draft = app
            .draft(&editor, article(title, section, &tags, "Body."))
            .await;
        app.publish(&editor, &draft).await;
        app.clock.advance(Duration::minutes(1));
    }
    let reader = TestApp::browser();
    assert_eq!(
        slugs(
            &app.get_json(&reader, "/api/v1/articles?section=designs")
                .await
        ),
        ["d-two", "d-one"]
    );
    assert_eq!(
        slugs(&app.get_json(&reader, "/api/v1/articles?tag=chairs").await),
        ["d-one", "p-one"]
    );
    assert_problem(
        app.get(&reader, "/api/v1/articles?section=gossip").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("section"),
    )
    .await;
    let sections = app.get_json(&reader, "/api/v1/sections").await;
    assert_eq!(sections["sections"][1]["name"], "Designs");
}

#[tokio::test]
async fn filters_by_publication_date() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Copyright").await;
    let mut published = Vec::new();
    for day in 1..=3 {
        let draft = app
            .draft(
                &editor,
                article(&format!("Day {day}"), "copyright", &[], "Body."),
            )
            .await;
        app.publish(&editor, &draft).await;
        published.push(app.now());
        app.clock.advance(Duration::days(1));
    }
    let reader = TestApp::browser();
    let query = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        format!(
            "/api/v1/articles?from={}&to={}",
            urlencode(&from.to_rfc3339()),
            urlencode(&to.to_rfc3339())
        )
    };
    let middle = app
        .get_json(&reader, &query(published[1], published[1]))
        .await;
    assert_eq!(slugs(&middle), ["day-2"]);
    let first_two = app
        .get_json(
            &reader,
            &query(published[0], published[1] + Duration::hours(1)),
        )
        .await;
    assert_eq!(slugs(&first_two), ["day-2", "day-1"]);
    let bad = app.get(&reader, "/api/v1/articles?from=yesterday").await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, Some("query")).await;
}

#[tokio::test]
async fn pages_stay_put_while_new_articles_arrive() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Litigation").await;
    for n in 1..=5 {
        let draft = app
            .draft(
                &editor,
                article(&format!("Story {n}"), "litigation", &[], "Body."),
            )
            .await;
        app.publish(&editor, &draft).await;
        app.clock.advance(Duration::minutes(1));
    }
    let reader = TestApp::browser();
    let first = app.get_json(&reader, "/api/v1/articles?per_page=2").await;
    assert_eq!(slugs(&first), ["story-5", "story-4"]);
    assert_eq!(first["total"], 5);
    let as_of = first["as_of"].as_str().expect("as_of").to_owned();

    app.clock.advance(Duration::seconds(1));
    let late = app
        .draft(&editor, article("Story 6", "litigation", &[], "Body."))
        .await;
    app.publish(&editor, &late).await;

    let second = app
        .get_json(
            &reader,
            &format!(
                "/api/v1/articles?per_page=2&page=2&as_of={}",
                urlencode(&as_of)
            ),
        )
        .await;
    assert_eq!(slugs(&second), ["story-3", "story-2"]);
    assert_eq!(second["total"], 5);
    let fresh = app.get_json(&reader, "/api/v1/articles?per_page=2").await;
    assert_eq!(slugs(&fresh), ["story-6", "story-5"]);
    assert_problem(
        app.get(&reader, "/api/v1/articles?per_page=1000").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("per_page"),
    )
    .await;
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn related_stories_rank_shared_tags_and_never_include_the_article_itself() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Designs").await;
    let mut publish = Vec::new();
    for (title, section, tags) in [
        ("Main story", "patents", vec!["acme", "batteries"]),
        ("Same section only", "patents", vec![]),
        ("One shared tag", "designs", vec!["acme"]),
        ("Two shared tags", "designs", vec!["acme", "batteries"]),
        ("Unrelated", "designs", vec!["lamps"]),
    ] {
        publish.push(
            app.draft(&editor, article(title, section, &tags, "Body."))
                .await,
        );
    }
    for draft in &publish {
        app.publish(&editor, draft).await;
    }
    app.draft(
        &editor,
        article(
            "Unpublished follow-up",
            "patents",
            &["acme", "batteries"],
            "Body.",
        ),
    )
    .await;

    let read = app
        .get_json(&TestApp::browser(), "/api/v1/articles/main-story")
        .await;
    let related: Vec<&str> = read["related"]
        .as_array()
        .expect("related")
        .iter()
        .map(|a| a["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(
        related,
        ["two-shared-tags", "one-shared-tag", "same-section-only"]
    );
}

/// A published article long enough for its teaser to leave some out; gives
/// the editor who published it and the article's API path.
async fn paywalled_story(app: &TestApp) -> (reqwest::Client, &'static str) {
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let draft = app
        .draft(
            &editor,
            article("Paywalled story", "patents", &[], LONG_BODY),
        )
        .await;
    app.publish(&editor, &draft).await;
    let path = "/api/v1/articles/paywalled-story";
    (editor, path)
}

#[tokio::test]
async fn access_depends_on_who_reads() {
    let app = TestApp::spawn().await;
    let (editor, path) = paywalled_story(&app).await;

    let check = |read: &Value, access: &str, reason: &str| {
        assert_eq!(
            (read["access"].as_str(), read["reason"].as_str()),
            (Some(access), Some(reason)),
            "{read}"
        );
        let html = read["body_html"].as_str().expect("html");
        assert!(html.contains("opening paragraph"));
        assert_eq!(html.contains("zebra-crossing"), access == "full", "{html}");
        assert_eq!(
            read["calls_to_action"].as_array().expect("ctas").is_empty(),
            access == "full"
        );
    };

    let anonymous = app.get_json(&TestApp::browser(), path).await;
    check(&anonymous, "teaser", "not_logged_in");
    let kinds: Vec<&str> = anonymous["calls_to_action"]
        .as_array()
        .expect("ctas")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["newsletter", "trial", "company_access"]);

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    check(
        &app.get_json(&reader, path).await,
        "teaser",
        "no_subscription",
    );
    check(&app.get_json(&editor, path).await, "full", "staff");

    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;
    let me = app.get_json(&reader, "/api/v1/me").await;
    let reader_id = me["id"].as_str().expect("id").to_owned();
    let grants = format!("/api/v1/admin/accounts/{reader_id}/grants");
    let now = app.now();

    let future = app
        .post(
            &admin,
            &grants,
            json!({ "starts_at": now + Duration::days(3), "ends_at": now + Duration::days(30) }),
        )
        .await;
    assert_eq!(future.status(), StatusCode::CREATED);
    check(
        &app.get_json(&reader, path).await,
        "teaser",
        "no_subscription",
    );

    let active = app
        .post(
            &admin,
            &grants,
            json!({ "ends_at": now + Duration::days(1), "note": "press pass" }),
        )
        .await;
    assert_eq!(active.status(), StatusCode::CREATED);
    let full = app.get_json(&reader, path).await;
    check(&full, "full", "subscription");
    assert!(full["access_until"].is_string());
    let me = app.get_json(&reader, "/api/v1/me").await;
    assert_eq!(me["access"]["level"], "full");
    let states: Vec<&str> = me["entitlements"]
        .as_array()
        .expect("entitlements")
        .iter()
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(states, ["upcoming", "active"]);

    app.clock.advance(Duration::days(2));
    check(
        &app.get_json(&reader, path).await,
        "teaser",
        "subscription_ended",
    );

    app.clock.advance(Duration::days(2));
    check(&app.get_json(&reader, path).await, "full", "subscription");
    let upcoming_id = me["entitlements"][0]["id"].as_str().expect("id");
    let revoked = app
        .post(
            &admin,
            &format!("/api/v1/admin/entitlements/{upcoming_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    check(
        &app.get_json(&reader, path).await,
        "teaser",
        "subscription_ended",
    );

    let by_reader = app.post(&reader, &grants, json!({})).await;
    assert_problem(by_reader, StatusCode::FORBIDDEN, None).await;
    let backwards = app
        .post(
            &admin,
            &grants,
            json!({ "starts_at": now, "ends_at": now - Duration::days(1) }),
        )
        .await;
    assert_problem(backwards, StatusCode::UNPROCESSABLE_ENTITY, Some("ends_at")).await;
}

/// Another instance keeps what each reader may read: a right granted
/// through this one reaches that one's reader once
/// `auth.session_recheck_ms` has passed.
#[tokio::test]
async fn a_right_granted_through_another_instance_reaches_its_readers() {
    let app = TestApp::spawn().await;
    let other = app
        .another_instance(|s| s.auth.session_recheck_ms = 100)
        .await;
    let (_, path) = paywalled_story(&app).await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    assert_eq!(other.get_json(&reader, path).await["access"], "teaser");

    let admin = TestApp::browser();
    app.privileged(&admin, "admin@example.com", "admin").await;
    let me = app.get_json(&reader, "/api/v1/me").await;
    let grants = format!(
        "/api/v1/admin/accounts/{}/grants",
        me["id"].as_str().expect("id")
    );
    let granted = app
        .post(&admin, &grants, json!({ "note": "press pass" }))
        .await;
    assert_eq!(granted.status(), StatusCode::CREATED);
    let access = polled(
        || async { other.get_json(&reader, path).await["access"].clone() },
        |access| access == "full",
    )
    .await;
    assert_eq!(access, "full");
}

#[tokio::test]
async fn withdrawn_articles_disappear_for_readers() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Designs").await;
    let draft = app
        .draft(&editor, article("Mistaken report", "designs", &[], "Body."))
        .await;
    app.publish(&editor, &draft).await;
    let path = format!(
        "/api/v1/articles/{}/withdraw",
        draft["id"].as_str().expect("id")
    );
    assert_eq!(
        app.post(&editor, &path, json!({})).await.status(),
        StatusCode::OK
    );
    let reader = TestApp::browser();
    assert_problem(
        app.get(&reader, "/api/v1/articles/mistaken-report").await,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    assert!(slugs(&app.get_json(&reader, "/api/v1/articles").await).is_empty());
    let withdrawn = app
        .get_json(&editor, "/api/v1/articles?status=withdrawn")
        .await;
    assert_eq!(slugs(&withdrawn), ["mistaken-report"]);
    assert_problem(
        app.post(&editor, &path, json!({})).await,
        StatusCode::CONFLICT,
        None,
    )
    .await;
}

#[tokio::test]
async fn demo_seed_fills_an_empty_site_once() {
    let app = TestApp::spawn().await;
    let out = app.cli(&["demo", "seed"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = TestApp::browser();
    let sections = app.get_json(&reader, "/api/v1/sections").await;
    assert_eq!(sections["sections"].as_array().expect("sections").len(), 6);
    let listing = app.get_json(&reader, "/api/v1/articles?per_page=100").await;
    let total = listing["total"].as_i64().expect("total");
    assert!((25..=40).contains(&total), "{total}");
    let first = listing["articles"][0]["slug"].as_str().expect("slug");
    let read = app
        .get_json(&reader, &format!("/api/v1/articles/{first}"))
        .await;
    assert_eq!(read["access"], "teaser");

    let again = app.cli(&["demo", "seed"], "");
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "added 0 sections and 0 articles"
    );
}

fn etag_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("etag")
        .expect("an ETag")
        .to_str()
        .expect("ASCII")
        .to_owned()
}

async fn revalidate(app: &TestApp, path: &str, etag: &str) -> reqwest::Response {
    TestApp::browser()
        .get(app.url(path))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("request")
}

/// A session cookie that names no live session (forged, malformed, or one
/// whose session has ended) reads as a visitor who is not logged in: the
/// teaser kept for everyone, with its ETag.
#[tokio::test]
async fn a_cookie_without_a_live_session_reads_as_not_logged_in() {
    let app = TestApp::spawn().await;
    let (_editor, path) = paywalled_story(&app).await;
    let kept = etag_of(&app.get(&TestApp::browser(), path).await);
    let app = &app;
    let read_with = |cookie: String| async move {
        let read = TestApp::browser()
            .get(app.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request");
        assert_eq!(read.status(), StatusCode::OK);
        let etag = etag_of(&read);
        let body: Value = read.json().await.expect("json");
        (etag, body["access"].clone(), body["reason"].clone())
    };
    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    let login = app
        .login_with(&TestApp::browser(), "reader@example.com", PASSWORD)
        .await;
    let live = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let signed_in = TestApp::browser()
        .get(app.url(path))
        .header("cookie", live.clone())
        .send()
        .await
        .expect("request");
    let body: Value = signed_in.json().await.expect("json");
    assert_eq!(body["reason"], "no_subscription", "{body}");

    for cookie in [
        format!("masthead_session={}", "ab".repeat(32)),
        "masthead_session=not-a-token".to_owned(),
    ] {
        assert_eq!(
            read_with(cookie).await,
            (kept.clone(), json!("teaser"), json!("not_logged_in"))
        );
    }
    app.clock
        .advance(Duration::hours(app.settings.auth.session_ttl_hours + 1));
    assert_eq!(
        read_with(live).await,
        (kept, json!("teaser"), json!("not_logged_in"))
    );
}

/// Readers are answered from memory: an unchanged answer is a 304, and
/// every change an editor makes through this instance shows at once.
#[tokio::test]
async fn kept_answers_revalidate_and_follow_every_change() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Trademarks").await;
    let first = app
        .draft(&editor, article("First mark", "trademarks", &[], LONG_BODY))
        .await;
    app.publish(&editor, &first).await;
    let reader = TestApp::browser();
    let list = "/api/v1/articles";
    let path = "/api/v1/articles/first-mark";

    let listed = app.get(&reader, list).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let list_tag = etag_of(&listed);
    let unchanged = revalidate(&app, list, &list_tag).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag_of(&unchanged), list_tag);
    assert!(unchanged.bytes().await.expect("body").is_empty());
    let read = app.get(&reader, path).await;
    let read_tag = etag_of(&read);
    assert_eq!(
        revalidate(&app, path, &read_tag).await.status(),
        StatusCode::NOT_MODIFIED
    );

    let id = first["id"].as_str().expect("id");
    let edited = editor
        .patch(app.url(&format!("/api/v1/articles/{id}")))
        .json(&json!({ "title": "First mark, amended" }))
        .send()
        .await
        .expect("request");
    assert_eq!(edited.status(), StatusCode::OK);
    let changed = revalidate(&app, path, &read_tag).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(etag_of(&changed), read_tag);
    let changed: Value = changed.json().await.expect("json");
    assert_eq!(changed["title"], "First mark, amended");
    let relisted = revalidate(&app, list, &list_tag).await;
    assert_eq!(relisted.status(), StatusCode::OK);
    let relisted: Value = relisted.json().await.expect("json");
    assert_eq!(relisted["articles"][0]["title"], "First mark, amended");

    let second = app
        .draft(&editor, article("Second mark", "trademarks", &[], "Body."))
        .await;
    app.clock.advance(Duration::minutes(1));
    app.publish(&editor, &second).await;
    assert_eq!(
        slugs(&app.get_json(&reader, list).await),
        ["second-mark", "first-mark"]
    );

    let staff = app.get(&editor, path).await;
    assert!(
        staff.headers().get("etag").is_none(),
        "kept for readers only"
    );
    let staff: Value = staff.json().await.expect("json");
    assert_eq!(staff["reason"], "staff");
    assert!(staff["body_html"]
        .as_str()
        .expect("html")
        .contains("zebra-crossing"));

    let withdraw = format!("/api/v1/articles/{id}/withdraw");
    assert_eq!(
        app.post(&editor, &withdraw, json!({})).await.status(),
        StatusCode::OK
    );
    assert_problem(app.get(&reader, path).await, StatusCode::NOT_FOUND, None).await;
    assert_eq!(slugs(&app.get_json(&reader, list).await), ["second-mark"]);
}

/// Another instance keeps its own copy: a change made through it reaches
/// this one's readers once `articles.cache_recheck_ms` has passed.
#[tokio::test]
async fn a_change_through_another_instance_reaches_kept_answers() {
    let app = TestApp::spawn_with(|s| s.articles.cache_recheck_ms = 100).await;
    let other = app.another_instance(|_| {}).await;
    let editor = app.editor().await;
    app.create_section(&editor, "Copyright").await;
    let first = app
        .draft(&editor, article("Old work", "copyright", &[], "Body."))
        .await;
    app.publish(&editor, &first).await;
    let reader = TestApp::browser();
    assert_eq!(
        slugs(&app.get_json(&reader, "/api/v1/articles").await),
        ["old-work"]
    );
    assert_eq!(
        app.get_json(&reader, "/api/v1/articles/old-work").await["title"],
        "Old work"
    );
    assert_eq!(
        section_slugs(&app.get_json(&reader, "/api/v1/sections").await),
        ["copyright"]
    );
    app.create_section(&editor, "Patents").await;
    assert_eq!(
        section_slugs(&app.get_json(&reader, "/api/v1/sections").await),
        ["copyright", "patents"],
        "a change through this instance shows at once"
    );

    other.create_section(&editor, "Trademarks").await;
    let second = other
        .draft(&editor, article("New work", "copyright", &[], "Body."))
        .await;
    app.clock.advance(Duration::minutes(1));
    other.publish(&editor, &second).await;
    let id = first["id"].as_str().expect("id");
    let edited = editor
        .patch(other.url(&format!("/api/v1/articles/{id}")))
        .json(&json!({ "title": "Old work, revised" }))
        .send()
        .await
        .expect("request");
    assert_eq!(edited.status(), StatusCode::OK);

    let listed = polled(
        || async { slugs(&app.get_json(&reader, "/api/v1/articles").await) },
        |listed| listed.len() == 2,
    )
    .await;
    assert_eq!(listed, ["new-work", "old-work"]);
    assert_eq!(
        app.get_json(&reader, "/api/v1/articles/old-work").await["title"],
        "Old work, revised"
    );
    let sections = polled(
        || async { section_slugs(&app.get_json(&reader, "/api/v1/sections").await) },
        |sections| sections.len() == 3,
    )
    .await;
    assert_eq!(sections, ["copyright", "patents", "trademarks"]);
}

fn section_slugs(list: &Value) -> Vec<String> {
    list["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .filter_map(|s| s["slug"].as_str().map(str::to_owned))
        .collect()
}
