//! The editors' console through HTTP, as a browser without JavaScript uses
//! it: the desk of articles, the form with its preview, scheduling,
//! publishing, withdrawing, the revisions, the sections, and the one list
//! of sections the newsletter shares with the articles. Then the same in a
//! real browser.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use masthead::platform::audit::model::SubjectKind;
use masthead::platform::audit::AuditEntry;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::helpers::{article, eventually, form_token, html_unescape, location, TestApp, PASSWORD};

const DESK: &str = "/admin/articles";
const NEW: &str = "/admin/articles/new";
const SECTIONS: &str = "/admin/sections";

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid instant")
}

/// The digest goes out at 07:00 London time; the tests start an hour before.
fn london_at_seven(settings: &mut masthead::platform::config::Settings) {
    settings.digest.schedule = true;
    settings.digest.send_at = "07:00".to_owned().try_into().expect("a time");
    settings.digest.timezone = "Europe/London".to_owned().try_into().expect("a zone");
}

/// The article form's fields, filled in.
fn fields<'a>(title: &'a str, section: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("title", title),
        ("standfirst", "What happened, in a sentence."),
        ("body", body),
        ("section", section),
        ("tags", "appeals, Pharma"),
        ("byline", "Ada Lovelace"),
    ]
}

/// The id at the end of the article page a form led to.
fn id_from(location: &str) -> String {
    location
        .strip_prefix("/admin/articles/")
        .unwrap_or_else(|| panic!("{location} is not an article page"))
        .to_owned()
}

fn audit_of(app: &TestApp, kind: SubjectKind, id: &str) -> Vec<AuditEntry> {
    let mut conn = app.pool().get().expect("conn");
    masthead::platform::audit::store::of_subject(&mut conn, kind, id).expect("query")
}

fn actions(entries: &[AuditEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.action.as_str()).collect()
}

/// Writes an article through the console's form; returns its id.
async fn write_article(app: &TestApp, editor: &reqwest::Client, fields: &[(&str, &str)]) -> String {
    let mut posted = fields.to_vec();
    posted.push(("intent", "save"));
    let response = app.submit(editor, NEW, DESK, &posted).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    id_from(&location(&response))
}

/// Presses one of the publication buttons of an article's page; returns
/// the page it leads back to.
async fn press(
    app: &TestApp,
    editor: &reqwest::Client,
    id: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("{DESK}/{id}");
    app.submit(editor, &page, &format!("{page}/{action}"), fields)
        .await
}

/// The articles in one state, as the JSON API shows them to editors.
async fn stored_articles(app: &TestApp, editor: &reqwest::Client, status: &str) -> Vec<Value> {
    app.get_json(editor, &format!("/api/v1/articles?status={status}"))
        .await["articles"]
        .as_array()
        .expect("articles")
        .clone()
}

/// Signs `email` up through the API and follows the confirmation link.
async fn newsletter_reader(app: &TestApp, email: &str, sections: Option<&[&str]>) {
    let body = match sections {
        Some(sections) => json!({ "email": email, "sections": sections }),
        None => json!({ "email": email }),
    };
    let response = app
        .post(&app.api, "/api/v1/newsletter/subscriptions", body)
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    confirm_newsletter(app, email).await;
}

async fn confirm_newsletter(app: &TestApp, email: &str) {
    let token = app.mailbox.nth(email, 1).await.token();
    let confirmed = app
        .post(
            &TestApp::browser(),
            "/api/v1/newsletter/confirm",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    app.mailbox.nth(email, 2).await;
}

/// Waits until the digest run of `date` has nothing left to send.
async fn digest_done(app: &TestApp, admin: &reqwest::Client, date: &str) -> Value {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let response = app
            .get(admin, &format!("/api/v1/admin/digests/{date}"))
            .await;
        if response.status() == StatusCode::OK {
            let run: Value = response.json().await.expect("json");
            if run["state"] == "completed" || run["state"] == "skipped" {
                return run;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run of {date} never finished"
        );
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

/// The titles a page links to as articles of the desk, in order.
fn desk_titles(html: &str) -> Vec<String> {
    html.split("<a href=\"/admin/articles/")
        .skip(1)
        .filter_map(|rest| {
            let (id, rest) = rest.split_once("\">")?;
            (id.len() == 36).then(|| html_unescape(rest.split('<').next().unwrap_or("")))
        })
        .collect()
}

#[tokio::test]
async fn the_desk_lists_every_state_and_filters_by_state_section_and_words() {
    let app = TestApp::spawn_with(|s| s.articles.per_page = 2).await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    app.draft(&editor, article("Draft on pills", "patents", &[], "Pills."))
        .await;
    app.clock.advance(Duration::minutes(1));
    let published = app
        .draft(
            &editor,
            article("Published on pills", "patents", &[], "Pills."),
        )
        .await;
    app.publish(&editor, &published).await;
    app.clock.advance(Duration::minutes(1));
    let scheduled = app
        .draft(
            &editor,
            article("Scheduled shoes", "trademarks", &[], "Shoes."),
        )
        .await;
    let at = app.now() + Duration::days(1);
    let path = format!(
        "/api/v1/articles/{}/publish",
        scheduled["id"].as_str().expect("id")
    );
    assert_eq!(
        app.post(&editor, &path, json!({ "at": at })).await.status(),
        StatusCode::OK
    );
    app.clock.advance(Duration::minutes(1));
    let withdrawn = app
        .draft(
            &editor,
            article("Withdrawn shoes", "trademarks", &[], "Shoes."),
        )
        .await;
    app.publish(&editor, &withdrawn).await;
    let path = format!(
        "/api/v1/articles/{}/withdraw",
        withdrawn["id"].as_str().expect("id")
    );
    assert_eq!(
        app.post(&editor, &path, json!({})).await.status(),
        StatusCode::OK
    );

    let (status, html) = app.page(&editor, DESK).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        desk_titles(&html),
        ["Withdrawn shoes", "Scheduled shoes"],
        "every state, latest changed first, two a page"
    );
    assert!(html.contains("1 to 2 of 4 articles"), "{html}");
    assert!(html.contains("status-tag--withdrawn\">Withdrawn"));
    assert!(html.contains("status-tag--scheduled\">Scheduled</span><br><span class=\"meta\">for "));
    assert!(
        html.contains("aria-current=\"page\">Articles</a>"),
        "the console's area"
    );
    assert!(html.contains("rel=\"next\""));
    let (_, second) = app.page(&editor, &format!("{DESK}?page=2")).await;
    assert_eq!(
        desk_titles(&second),
        ["Published on pills", "Draft on pills"]
    );
    assert!(!second.contains("rel=\"next\"") && second.contains("rel=\"prev\""));

    let (_, drafts) = app.page(&editor, &format!("{DESK}?status=draft")).await;
    assert_eq!(desk_titles(&drafts), ["Draft on pills"]);
    assert!(drafts.contains("<option value=\"draft\" selected>"));
    let (_, trademarks) = app
        .page(&editor, &format!("{DESK}?section=trademarks"))
        .await;
    assert_eq!(
        desk_titles(&trademarks),
        ["Withdrawn shoes", "Scheduled shoes"]
    );
    let (_, both) = app
        .page(
            &editor,
            &format!("{DESK}?status=published&section=patents&q="),
        )
        .await;
    assert_eq!(desk_titles(&both), ["Published on pills"]);
    let (_, words) = app.page(&editor, &format!("{DESK}?q=pills")).await;
    assert_eq!(
        desk_titles(&words),
        ["Published on pills", "Draft on pills"]
    );
    assert!(
        words.contains("value=\"pills\""),
        "the words stay in the box"
    );
    let (_, none) = app
        .page(&editor, &format!("{DESK}?status=scheduled&section=patents"))
        .await;
    assert!(desk_titles(&none).is_empty());
    assert!(none.contains("No article matches."));
    let (status, _) = app.page(&editor, &format!("{DESK}?status=lost")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn readers_get_403_and_visitors_the_login_page() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let id = write_article(&app, &editor, &fields("Staff only", "patents", "Body.")).await;

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    for path in [
        DESK.to_owned(),
        NEW.to_owned(),
        format!("{DESK}/{id}"),
        format!("{DESK}/{id}/revisions"),
        SECTIONS.to_owned(),
    ] {
        let (status, html) = app.page(&reader, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("You cannot do that here"), "{path}: {html}");
    }
    let (_, account) = app.page(&reader, "/account").await;
    let token = form_token(&account);
    for (action, fields) in [
        (SECTIONS.to_owned(), vec![("name", "Gossip")]),
        (DESK.to_owned(), fields("Hijack", "patents", "Body.")),
        (format!("{DESK}/{id}/publish"), vec![]),
        (format!("{DESK}/{id}/withdraw"), vec![]),
    ] {
        let response = app.post_form(&reader, &action, &token, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
    }
    let sections = app.get_json(&reader, "/api/v1/sections").await;
    assert_eq!(sections["sections"].as_array().expect("list").len(), 1);
    assert_eq!(stored_articles(&app, &editor, "draft").await.len(), 1);

    let visitor = TestApp::browser();
    let response = app.get(&visitor, DESK).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fadmin%2Farticles");

    let admin = app.admin().await;
    let (status, _) = app.page(&admin, DESK).await;
    assert_eq!(status, StatusCode::OK, "admins are editors too");
}

#[tokio::test]
async fn a_form_with_errors_comes_back_with_them_and_the_input_kept() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;

    let (status, html) = app.page(&editor, NEW).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>New article</h1>"));
    assert!(
        html.contains("value=\"Grace Hopper\""),
        "signed by the editor"
    );
    assert!(html.contains("<option value=\"patents\">Patents</option>"));

    let response = app
        .submit(
            &editor,
            NEW,
            DESK,
            &[
                ("title", " "),
                ("standfirst", "A standfirst <kept>"),
                ("body", ""),
                ("section", ""),
                ("tags", "ok"),
                ("byline", "Ada"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("a page");
    assert!(html.contains("<title>Error: New article"), "{html}");
    assert_eq!(html.matches("<h1").count(), 1);
    for field in ["title", "body", "section"] {
        assert!(
            html.contains(&format!("<a href=\"#{field}\">")),
            "{field}: {html}"
        );
        assert!(html.contains(&format!("id=\"{field}-error\"")), "{field}");
    }
    assert!(html.contains(
        "id=\"title\" name=\"title\" type=\"text\" value=\" \" required aria-invalid=\"true\""
    ));
    assert!(
        html.contains(">A standfirst &lt;kept&gt;</textarea>"),
        "kept, escaped"
    );
    assert!(html.contains("name=\"tags\" type=\"text\" value=\"ok\""));
    assert!(
        stored_articles(&app, &editor, "draft").await.is_empty(),
        "nothing stored"
    );

    let id = write_article(&app, &editor, &fields("A ruling", "patents", "Body.")).await;
    let response = app
        .submit(
            &editor,
            &format!("{DESK}/{id}"),
            &format!("{DESK}/{id}"),
            &[
                ("title", "A ruling, renamed"),
                ("standfirst", "Kept too."),
                ("body", "Body."),
                ("section", "gossip"),
                ("tags", ""),
                ("byline", "Ada"),
                ("intent", "save"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("a page");
    assert!(html.contains("<title>Error: Edit: A ruling ·"), "{html}");
    assert!(
        html.contains("<a href=\"#section\">No section has this slug.</a>"),
        "{html}"
    );
    assert!(html.contains("value=\"A ruling, renamed\""));
    let stored = stored_articles(&app, &editor, "draft").await;
    assert_eq!(stored[0]["title"], "A ruling", "nothing half-saved");
}

#[tokio::test]
async fn the_preview_shows_the_published_html_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let body = "Hello **world**.\n\n<script>alert(1)</script>\n\n\
                [bad](javascript:alert(1)) and [good](https://example.com/).";
    let mut posted = fields("Preview me", "patents", body);
    posted.push(("intent", "preview"));

    let response = app.submit(&editor, NEW, DESK, &posted).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("a page");
    let rendered = masthead::articles::markdown::to_html(body);
    assert!(
        html.contains(&rendered),
        "the publishing renderer's output:\n{html}"
    );
    assert!(html.contains("<strong>world</strong>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert") && !html.contains("href=\"javascript"));
    assert!(html.contains("<h2 id=\"preview-heading\">Preview</h2>"));
    assert!(html.contains("<p class=\"article-preview__title\">Preview me</p>"));
    assert!(html.contains("<p class=\"kicker\">Patents</p>"));
    assert!(
        html.contains("value=\"Preview me\""),
        "the form comes back filled in"
    );
    assert!(html.contains("Hello **world**."));
    assert!(
        stored_articles(&app, &editor, "draft").await.is_empty(),
        "nothing saved"
    );

    let id = write_article(
        &app,
        &editor,
        &fields("Saved title", "patents", "Saved body."),
    )
    .await;
    let mut posted = fields("Unsaved title", "patents", "Unsaved *body*.");
    posted.push(("intent", "preview"));
    let page = format!("{DESK}/{id}");
    let response = app.submit(&editor, &page, &page, &posted).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("a page");
    assert!(html.contains("<p>Unsaved <em>body</em>.</p>"));
    assert!(html.contains("<h1>Edit article</h1>"));
    let stored = stored_articles(&app, &editor, "draft").await;
    assert_eq!(stored[0]["title"], "Saved title");
    assert!(audit_of(&app, SubjectKind::Article, &id)
        .iter()
        .all(|e| e.action == "article.create"));
}

#[tokio::test]
async fn edits_keep_revisions_and_the_revisions_page_shows_each_diff() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    let body = "The first paragraph.\n\nThe second paragraph.\n\nThe third.";
    let id = write_article(&app, &editor, &fields("Bistro loses", "patents", body)).await;
    let page = format!("{DESK}/{id}");
    let (_, html) = app.page(&editor, &format!("{page}/revisions")).await;
    assert!(html.contains("No edits kept yet."), "{html}");

    app.clock.advance(Duration::minutes(1));
    let published = press(&app, &editor, &id, "publish", &[]).await;
    assert_eq!(location(&published), page);
    app.clock.advance(Duration::minutes(5));
    let edited = "The first paragraph.\n\nThe second paragraph, corrected.\n\nThe third.";
    let mut posted = fields("Bistro loses appeal", "patents", edited);
    posted.push(("intent", "save"));
    let saved = app.submit(&editor, &page, &page, &posted).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page(&editor, &page).await;
    assert!(html.contains("Your changes are saved and on the site."));
    app.clock.advance(Duration::minutes(5));
    let mut posted = fields("Bistro loses appeal", "trademarks", edited);
    posted.push(("intent", "save"));
    app.submit(&editor, &page, &page, &posted).await;

    let history = app
        .get_json(&editor, &format!("/api/v1/articles/{id}/revisions"))
        .await;
    let revisions = history["revisions"].as_array().expect("revisions");
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[1]["changed_fields"], json!(["title", "body"]));
    assert_eq!(revisions[0]["changed_fields"], json!(["section"]));

    let (status, html) = app.page(&editor, &format!("{page}/revisions")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<h1").count(), 1);
    let latest = html.find("<li class=\"revision\">").expect("a revision");
    let older = html.rfind("<li class=\"revision\">").expect("another");
    assert!(latest < older);
    let (latest, older) = (&html[latest..older], &html[older..]);
    assert!(latest.contains(", by Grace Hopper</h3>"), "{latest}");
    assert!(latest.contains("<h4 class=\"revision__field\">Section</h4>"));
    assert!(
        latest.contains("Removed: </span>Patents</li>")
            && latest.contains("Added: </span>Trademarks</li>")
    );
    assert!(
        !latest.contains(">Body</h4>"),
        "each edit against the next version"
    );
    assert!(older.contains("<h4 class=\"revision__field\">Title</h4>"));
    assert!(older.contains(
        "<li class=\"diff__line diff__line--removed\"><span class=\"diff__mark\" aria-hidden=\"true\">−</span><span class=\"visually-hidden\">Removed: </span>The second paragraph.</li>"
    ), "{older}");
    assert!(older.contains(
        "<li class=\"diff__line diff__line--added\"><span class=\"diff__mark\" aria-hidden=\"true\">+</span><span class=\"visually-hidden\">Added: </span>The second paragraph, corrected.</li>"
    ));
    assert!(
        older.contains("Unchanged: </span>The first paragraph.</li>"),
        "context"
    );
    assert!(!older.contains(">Section</h4>"));
    for done in [
        "Drafted",
        "Published",
        "Edited: title, body",
        "Edited: section",
    ] {
        assert!(
            html.contains(&format!("<td data-label=\"What\">{done}</td>")),
            "{done}: {html}"
        );
    }
    let trail = audit_of(&app, SubjectKind::Article, &id);
    assert_eq!(
        actions(&trail),
        [
            "article.create",
            "article.publish",
            "article.edit",
            "article.edit"
        ]
    );
    assert_eq!(trail[2].detail.as_deref(), Some("title, body"));
}

#[tokio::test]
async fn schedule_publish_and_withdraw_from_the_article_page() {
    // 06:00 in London, on GMT.
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 0), london_at_seven).await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let id = write_article(
        &app,
        &editor,
        &fields("Embargoed ruling", "patents", "The ruling."),
    )
    .await;
    let page = format!("{DESK}/{id}");
    let (_, html) = app.page(&editor, &page).await;
    assert!(
        html_unescape(&html).contains("Date and time in Europe/London time"),
        "{html}"
    );
    assert!(html.contains("type=\"datetime-local\""));

    for (typed, message) in [
        (
            "2027-01-12T05:59",
            "Choose a time in the future, or publish now.",
        ),
        ("next week", "Enter a date and time like 2030-01-31 08:00."),
        ("", "Enter the date and time to publish it."),
        (
            "2027-03-28T01:30",
            "01:30 on 28 March 2027 does not exist in Europe/London",
        ),
    ] {
        let response = press(&app, &editor, &id, "schedule", &[("publish_at", typed)]).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{typed}"
        );
        let html = response.text().await.expect("a page");
        assert!(html.contains("<a href=\"#publish_at\">"), "{typed}: {html}");
        assert!(html_unescape(&html).contains(message), "{typed}: {html}");
        assert!(html.contains(&format!(
            "name=\"publish_at\" type=\"datetime-local\"{}",
            if typed.is_empty() {
                String::new()
            } else {
                format!(" value=\"{typed}\"")
            }
        )));
    }

    app.clock.advance(Duration::minutes(1));
    // Summer time: 09:00 in London is 08:00 UTC.
    let response = press(
        &app,
        &editor,
        &id,
        "schedule",
        &[("publish_at", "2027-07-01T09:00")],
    )
    .await;
    assert_eq!(location(&response), page);
    let (_, html) = app.page(&editor, &page).await;
    assert!(
        html.contains("Scheduled: it goes on the site at 1 July 2027, 09:00 BST"),
        "{html}"
    );
    assert!(
        html.contains("value=\"2027-07-01T09:00\""),
        "the field shows the time set"
    );
    let scheduled = stored_articles(&app, &editor, "scheduled").await;
    assert_eq!(scheduled[0]["published_at"], "2027-07-01T08:00:00Z");
    let (_, front) = app.page(&TestApp::browser(), "/").await;
    assert!(!front.contains("Embargoed ruling"));

    app.clock.advance(Duration::minutes(1));
    let response = press(&app, &editor, &id, "publish", &[]).await;
    assert_eq!(location(&response), page);
    let (_, html) = app.page(&editor, &page).await;
    assert!(html.contains("Published: it is on the site now"));
    assert!(html_unescape(&html)
        .contains("href=\"/articles/embargoed-ruling\">Read it on the site</a>"));
    assert!(
        !html.contains(">Publish now</button>"),
        "nothing left to publish"
    );
    let (_, front) = app.page(&TestApp::browser(), "/").await;
    assert!(front.contains("Embargoed ruling"));

    // A second editor's stale page.
    let (_, account) = app.page(&editor, "/account").await;
    let response = app
        .post_form(
            &editor,
            &format!("{page}/publish"),
            &form_token(&account),
            &[],
        )
        .await;
    assert_eq!(location(&response), page);
    let (_, html) = app.page(&editor, &page).await;
    assert!(html.contains("Nothing was changed: this article is already published."));

    app.clock.advance(Duration::minutes(1));
    let response = press(&app, &editor, &id, "withdraw", &[]).await;
    assert_eq!(location(&response), page);
    let (_, html) = app.page(&editor, &page).await;
    assert!(html.contains("Withdrawn: readers no longer see it"));
    let (_, front) = app.page(&TestApp::browser(), "/").await;
    assert!(!front.contains("Embargoed ruling"));
    let read = app
        .get(&TestApp::browser(), "/articles/embargoed-ruling")
        .await;
    assert_eq!(read.status(), StatusCode::NOT_FOUND);

    let trail = audit_of(&app, SubjectKind::Article, &id);
    assert_eq!(
        actions(&trail),
        [
            "article.create",
            "article.schedule",
            "article.publish",
            "article.withdraw"
        ]
    );
    assert_eq!(
        trail[1].detail.as_deref(),
        Some("for 2027-07-01T08:00:00+00:00")
    );
    assert!(trail.iter().all(|e| e.actor_id.is_some()));

    // The worker publishes a scheduled article when its time comes.
    let other = write_article(
        &app,
        &editor,
        &fields("Morning ruling", "patents", "Early."),
    )
    .await;
    press(
        &app,
        &editor,
        &other,
        "schedule",
        &[("publish_at", "2027-01-12T06:30")],
    )
    .await;
    app.set_time(utc(2027, 1, 12, 6, 31));
    let pool = app.pool();
    eventually("the scheduled article is published", || {
        let mut conn = pool.get().expect("conn");
        let id = other.parse().expect("an id");
        masthead::articles::store::find(&mut conn, id)
            .expect("query")
            .is_some_and(|a| a.status == masthead::articles::ArticleStatus::Published)
    })
    .await;
    let trail = audit_of(&app, SubjectKind::Article, &other);
    let last = trail.last().expect("an entry");
    assert_eq!(last.action, "article.publish");
    assert_eq!(
        (last.actor_id, last.detail.as_deref()),
        (None, Some("as scheduled"))
    );
    let (_, html) = app
        .page(&editor, &format!("{DESK}/{other}/revisions"))
        .await;
    assert!(html.contains("<td data-label=\"Who\">The system</td><td data-label=\"What\">Published as scheduled</td>"), "{html}");
}

#[tokio::test]
async fn the_sections_page_lists_counts_and_adds_sections() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    let (status, html) = app.page(&editor, SECTIONS).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("There are no sections yet."));

    let response = app
        .submit(&editor, SECTIONS, SECTIONS, &[("name", "")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("a page");
    assert!(html.contains("<title>Error: Sections"));
    assert!(html.contains("<a href=\"#name\">"));

    let response = app
        .submit(
            &editor,
            SECTIONS,
            SECTIONS,
            &[("name", "Trade secrets"), ("slug", "")],
        )
        .await;
    assert_eq!(location(&response), SECTIONS);
    let (_, html) = app.page(&editor, SECTIONS).await;
    assert!(html.contains("Section “Trade secrets” created."), "{html}");
    assert!(html.contains("<a href=\"/sections/trade-secrets\">Trade secrets</a>"));

    let response = app
        .submit(&editor, SECTIONS, SECTIONS, &[("name", "Trade Secrets")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("a page");
    assert!(
        html.contains("<a href=\"#name\">A section with this slug already exists"),
        "{html}"
    );
    assert!(html.contains("value=\"Trade Secrets\""));
    let response = app
        .submit(
            &editor,
            SECTIONS,
            SECTIONS,
            &[("name", "Competition"), ("slug", "Bad Slug!")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .expect("a page")
        .contains("<a href=\"#slug\">"));

    write_article(&app, &editor, &fields("A secret", "trade-secrets", "Body.")).await;
    let (_, html) = app.page(&editor, SECTIONS).await;
    assert!(
        html.contains(">1<span class=\"visually-hidden\"> in Trade secrets</span></a>"),
        "{html}"
    );

    let sections = app.get_json(&editor, "/api/v1/sections").await;
    assert_eq!(sections["sections"].as_array().expect("list").len(), 1);
    let mut conn = app.pool().get().expect("conn");
    let section = masthead::articles::store::sections(&mut conn).expect("query");
    let trail = audit_of(&app, SubjectKind::Section, &section[0].id.to_string());
    assert_eq!(actions(&trail), ["section.create"]);
    assert_eq!(
        trail[0].detail.as_deref(),
        Some("Trade secrets (trade-secrets)")
    );
    assert!(trail[0].actor_id.is_some());
}

#[tokio::test]
async fn a_new_section_is_offered_at_sign_up_and_reaches_the_digest() {
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 0), london_at_seven).await;
    let admin = app.admin().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    // One reader takes the newsletter as it comes, another picks a section.
    newsletter_reader(&app, "everything@example.com", None).await;
    newsletter_reader(&app, "picky@example.com", Some(&["patents"])).await;

    let response = app
        .submit(&editor, SECTIONS, SECTIONS, &[("name", "Trade secrets")])
        .await;
    assert_eq!(location(&response), SECTIONS);

    let visitor = TestApp::browser();
    let (_, signup) = app.page(&visitor, "/newsletter").await;
    assert!(
        signup.contains("<label for=\"sections-trade-secrets\">Trade secrets</label>"),
        "{signup}"
    );
    assert!(signup.contains("name=\"sections\" type=\"checkbox\" value=\"trade-secrets\" checked"));
    let response = app
        .submit(
            &visitor,
            "/newsletter",
            "/newsletter",
            &[
                ("email", "secrets@example.com"),
                ("sections_offered", "1"),
                ("sections", "trade-secrets"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    confirm_newsletter(&app, "secrets@example.com").await;
    let sections_of = |email: &str| {
        app.subscriber(email)
            .expect("stored")
            .sections
            .as_slice()
            .to_vec()
    };
    assert_eq!(sections_of("secrets@example.com"), ["trade-secrets"]);
    assert_eq!(
        sections_of("everything@example.com"),
        ["patents", "trademarks", "trade-secrets"],
        "the whole newsletter takes in a new section"
    );
    assert_eq!(
        sections_of("picky@example.com"),
        ["patents"],
        "a pick is kept"
    );

    let id = write_article(
        &app,
        &editor,
        &fields("Recipe leak ends in court", "trade-secrets", "The story."),
    )
    .await;
    press(&app, &editor, &id, "publish", &[]).await;

    app.set_time(utc(2027, 1, 12, 7, 0));
    let run = digest_done(&app, &admin, "2027-01-12").await;
    assert_eq!(run["articles"], 1, "{run}");
    assert_eq!(run["counts"]["sent"], 2, "{run}");
    for email in ["secrets@example.com", "everything@example.com"] {
        let digest = app.mailbox.with_subject(email, "Daily").await;
        assert!(
            digest.text().contains("Recipe leak ends in court"),
            "{email}"
        );
        assert!(
            digest.text().contains("Trade secrets"),
            "{email}: {}",
            digest.text()
        );
    }
    assert_eq!(
        app.mailbox.to("picky@example.com").len(),
        2,
        "only the sign-up mail"
    );
}

#[tokio::test]
async fn on_a_site_without_sections_a_sign_up_takes_every_section_to_come() {
    let app = TestApp::spawn().await;
    let visitor = TestApp::browser();
    let (status, _) = app.page(&visitor, "/newsletter").await;
    assert_eq!(status, StatusCode::OK);
    let response = app
        .submit(
            &visitor,
            "/newsletter",
            "/newsletter",
            &[("email", "early@example.com"), ("sections_offered", "1")],
        )
        .await;
    assert_eq!(location(&response), "/newsletter/check-email");
    let sections_of = |email: &str| {
        app.subscriber(email)
            .expect("stored")
            .sections
            .as_slice()
            .to_vec()
    };
    assert!(sections_of("early@example.com").is_empty());

    let editor = app.editor().await;
    app.submit(&editor, SECTIONS, SECTIONS, &[("name", "Patents")])
        .await;
    assert_eq!(sections_of("early@example.com"), ["patents"]);
    app.submit(&editor, SECTIONS, SECTIONS, &[("name", "Designs")])
        .await;
    assert_eq!(sections_of("early@example.com"), ["patents", "designs"]);
}

/// Before the sections table was the newsletter's source, a reader who
/// kept every box ticked stored the default configuration's five sections.
#[tokio::test]
async fn the_migration_gives_readers_who_took_every_configured_section_every_section() {
    use diesel::connection::SimpleConnection;
    use masthead::platform::db::DbConnection;

    let app = TestApp::spawn().await;
    app.add_sections(&[
        "Patents",
        "Trademarks",
        "Copyright",
        "Designs",
        "Trade secrets",
        "Litigation",
    ]);
    // Every section the configuration offered before sections were the site's.
    let configured = [
        "patents",
        "trademarks",
        "copyright",
        "designs",
        "litigation",
    ];
    app.seed_subscribers(&["all@example.com"], &configured);
    app.seed_subscribers(&["some@example.com"], &["patents"]);
    let mut conn = app.pool().get().expect("conn");
    let up = |backend: &str| {
        std::fs::read_to_string(format!(
            "migrations/{backend}/2026-11-26-000009_sections_source/up.sql"
        ))
        .expect("the migration")
    };
    match &mut *conn {
        DbConnection::Sqlite(sqlite) => sqlite.batch_execute(&up("sqlite")),
        DbConnection::Postgres(pg) => pg.batch_execute(&up("postgres")),
    }
    .expect("the migration runs");

    let sections_of = |email: &str| {
        app.subscriber(email)
            .expect("stored")
            .sections
            .as_slice()
            .to_vec()
    };
    assert_eq!(
        sections_of("all@example.com"),
        [
            "patents",
            "trademarks",
            "copyright",
            "designs",
            "trade-secrets",
            "litigation"
        ]
    );
    assert_eq!(sections_of("some@example.com"), ["patents"]);
}

/// The editor's day in a real browser: write, preview, schedule, publish,
/// and find the story on the front page and in the digest's preview.
#[tokio::test]
async fn an_editor_writes_previews_schedules_and_publishes_in_the_browser() {
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 0), london_at_seven).await;
    let Some(browser) = Browser::start(
        "an_editor_writes_previews_schedules_and_publishes_in_the_browser",
        &app,
    )
    .await
    else {
        return;
    };
    let api_editor = app.editor().await;
    app.create_section(&api_editor, "Patents").await;
    app.create_section(&api_editor, "Trade secrets").await;
    for n in 1..=3 {
        let draft = app
            .draft(
                &api_editor,
                article(&format!("Earlier story {n}"), "patents", &[], "Text."),
            )
            .await;
        if n > 1 {
            app.publish(&api_editor, &draft).await;
        }
    }
    let email = "desk@example.com";
    app.privileged(&TestApp::browser(), email, "editor").await;

    browser.goto("/login?next=/admin/articles").await;
    browser.fill_label("Email address", email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_text("Write an article").await;
    browser.screenshot("console-articles").await;
    browser.axe("the articles desk").await;

    browser
        .find("a[href='/admin/articles/new']")
        .await
        .click()
        .await;
    browser.wait_for_text("New article").await;
    browser
        .fill_label("Title", "Recipe leak ends in court")
        .await;
    browser
        .fill_label("Standfirst", "A bakery's secret sauce stays secret.")
        .await;
    browser
        .fill_label(
            "Body",
            "The court found the recipe was a **trade secret**.\n\nThe baker must pay.",
        )
        .await;
    browser
        .find("#section option[value='trade-secrets']")
        .await
        .click()
        .await;
    browser.fill_label("Tags", "recipes, injunctions").await;
    browser.click_button("Preview").await;
    browser.wait_for_text("As readers will see it").await;
    let bold = browser
        .find(".article-preview .body strong")
        .await
        .text()
        .await;
    assert_eq!(bold, "trade secret");
    browser.screenshot("console-article-preview").await;
    browser.axe("the article form with its preview").await;

    app.clock.advance(Duration::minutes(1));
    browser.click_button("Save draft").await;
    browser.wait_for_text("Draft saved.").await;
    let page = browser.current_path().await;
    browser
        .execute(
            "document.getElementById('publish_at').value = arguments[0];",
            vec![json!("2027-01-12T09:00")],
        )
        .await;
    app.clock.advance(Duration::minutes(1));
    browser.click_button("Schedule").await;
    browser
        .wait_for_text("Scheduled: it goes on the site at 12 January 2027, 09:00 GMT")
        .await;
    browser.goto("/").await;
    browser.wait_for_text("Earlier story 3").await;
    assert!(!browser.text().await.contains("Recipe leak ends in court"));

    browser.goto(&page).await;
    app.clock.advance(Duration::minutes(1));
    browser.click_button("Publish now").await;
    browser
        .wait_for_text("Published: it is on the site now")
        .await;
    browser.screenshot("console-article-published").await;
    browser.axe("the published article's form").await;

    // An edit after publication, for the revisions.
    browser
        .fill_label("Title", "Recipe leak ends in court ruling")
        .await;
    app.clock.advance(Duration::minutes(1));
    browser.click_button("Save changes").await;
    browser
        .wait_for_text("Your changes are saved and on the site.")
        .await;
    browser.goto(&format!("{page}/revisions")).await;
    browser.wait_for_text("Edited: title").await;
    browser.screenshot("console-article-revisions").await;
    browser.axe("the revisions page").await;

    browser.goto("/").await;
    browser
        .wait_for_text("Recipe leak ends in court ruling")
        .await;

    app.clock.advance(Duration::minutes(1));
    let admin = app.admin().await;
    let preview = app
        .get_json(&admin, "/api/v1/admin/digests/preview?date=2027-01-12")
        .await;
    assert!(
        preview["text"]
            .as_str()
            .expect("a text part")
            .contains("Recipe leak ends in court ruling"),
        "{preview}"
    );
    assert!(preview["html"]
        .as_str()
        .expect("an HTML part")
        .contains("Recipe leak ends in court ruling"));

    browser.goto(SECTIONS).await;
    browser.wait_for_text("Add a section").await;
    browser.screenshot("console-sections").await;
    browser.axe("the sections page").await;
}
