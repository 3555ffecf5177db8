//! The console's people pages: `/admin/subscribers` (search, history, the
//! suppression list and lifting) and `/admin/accounts` (search, roles,
//! grants and revocations), through HTTP as a browser uses them, and once
//! in a real browser.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use masthead::platform::audit::model::SubjectKind;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::helpers::{form_token, html_unescape, location, TestApp, PASSWORD};

/// A page an admin opens; entities undone so text can be looked for as
/// written.
async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let (status, html) = app.page(client, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    html_unescape(&html)
}

/// Follows a redirect with the same client; returns where it went and the
/// page there (with its flash).
async fn follow(
    app: &TestApp,
    client: &reqwest::Client,
    response: reqwest::Response,
) -> (String, String) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response);
    (to.clone(), page(app, client, &to).await)
}

/// Signs `email` up through the API for `sections`, from `source`.
async fn signs_up(app: &TestApp, email: &str, sections: &[&str], source: &str) {
    let response = app
        .post(
            &app.api,
            "/api/v1/newsletter/subscriptions",
            json!({ "email": email, "sections": sections, "source": source }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

/// The ids of the subscribers a search page links to, in order.
fn linked_ids(html: &str, prefix: &str) -> Vec<String> {
    html.split(&format!("href=\"{prefix}"))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .map(str::to_owned)
        .collect()
}

fn subscriber_id(app: &TestApp, email: &str) -> String {
    app.subscriber(email).expect("stored").id.to_string()
}

/// How many times `action` was recorded against a subject.
fn audited(app: &TestApp, kind: SubjectKind, id: &str, action: &str) -> usize {
    let mut conn = app.pool().get().expect("conn");
    masthead::platform::audit::store::of_subject(&mut conn, kind, id)
        .expect("query")
        .into_iter()
        .filter(|e| e.action == action)
        .count()
}

async fn report_bounce(app: &TestApp, admin: &reqwest::Client, email: &str, detail: &str) {
    let reported = app
        .post(
            admin,
            "/api/v1/admin/bounces",
            json!({ "email": email, "type": "hard_bounce", "detail": detail }),
        )
        .await;
    assert_eq!(reported.status(), StatusCode::ACCEPTED);
}

/// Registers `email` under `name` (not verified, not logged in); returns
/// the account's id.
async fn registers(app: &TestApp, email: &str, name: &str) -> String {
    let registered = app
        .post(
            &app.api,
            "/api/v1/accounts",
            json!({ "email": email, "password": PASSWORD, "name": name }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let mut conn = app.pool().get().expect("conn");
    let email = masthead::platform::domain::EmailAddress::parse(email).expect("valid");
    masthead::accounts::store::find_by_email(&mut conn, &email)
        .expect("query")
        .expect("the account")
        .id
        .to_string()
}

/// A verified, logged-in reader; returns the client and the account's id.
async fn reader(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let client = TestApp::browser();
    app.verified_reader(&client, email).await;
    let id = app.get_json(&client, "/api/v1/me").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    (client, id)
}

#[tokio::test]
async fn subscribers_are_found_by_address_status_section_and_source() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    app.create_section(&editor, "Trademarks").await;
    app.confirmed_subscriber("ada.lovelace@example.com", 0)
        .await;
    signs_up(&app, "a_b@example.org", &["patents"], "api").await;
    signs_up(&app, "axb@example.org", &["trademarks"], "web").await;
    let ada = subscriber_id(&app, "ada.lovelace@example.com");
    let a_b = subscriber_id(&app, "a_b@example.org");
    let axb = subscriber_id(&app, "axb@example.org");
    let found = |html: &str| {
        let mut ids = linked_ids(html, "/admin/subscribers/");
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<&String>| {
        ids.sort();
        ids.into_iter().cloned().collect::<Vec<_>>()
    };

    let all = page(&app, &admin, "/admin/subscribers").await;
    assert!(all.contains("3 subscribers; newest first."), "{all}");
    assert!(
        all.contains("<option value=\"trademarks\">Trademarks</option>"),
        "{all}"
    );
    assert_eq!(found(&all), sorted(vec![&ada, &a_b, &axb]));
    assert!(all.contains("ada.lovelace@example.com"), "{all}");

    for (query, expected) in [
        // Any case, any part of the address.
        ("q=LOVELACE", vec![&ada]),
        ("q=%40example.org", vec![&a_b, &axb]),
        // `_` and `%` are themselves, not wildcards.
        ("q=a_b", vec![&a_b]),
        ("q=%25", vec![]),
        ("status=confirmed", vec![&ada]),
        ("status=pending", vec![&a_b, &axb]),
        ("section=trademarks", vec![&ada, &axb]),
        ("section=patents&status=pending", vec![&a_b]),
        ("source=web", vec![&axb]),
    ] {
        let html = page(&app, &admin, &format!("/admin/subscribers?{query}")).await;
        assert_eq!(found(&html), sorted(expected), "{query}: {html}");
    }
    let none = page(&app, &admin, "/admin/subscribers?q=nobody").await;
    assert!(none.contains("No subscriber matches."), "{none}");

    // The search is shown back as text, never as markup.
    let (status, raw) = app
        .page(
            &admin,
            "/admin/subscribers?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!raw.contains("<script>alert(1)"), "{raw}");
    assert!(raw.contains("&lt;script&gt;alert(1)"), "{raw}");

    // A search longer than any address is refused as GOV.UK shows it.
    let long = "x".repeat(255);
    let (status, raw) = app
        .page(&admin, &format!("/admin/subscribers?q={long}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(raw.contains("<title>Error: Subscribers"), "{raw}");
    assert!(raw.contains("href=\"#q\""), "{raw}");
    assert!(raw.contains("aria-invalid=\"true\""), "{raw}");
    let (status, _) = app.page(&admin, "/admin/subscribers?status=gone").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The admin API answers the same search.
    let api = app
        .get_json(&admin, "/api/v1/admin/newsletter/subscribers?q=A_B")
        .await;
    assert_eq!(api["total"], 1, "{api}");
    assert_eq!(api["subscribers"][0]["email"], "a_b@example.org");
}

#[tokio::test]
async fn a_subscriber_page_shows_their_history() {
    let start = Utc
        .with_ymd_and_hms(2027, 1, 12, 6, 30, 0)
        .single()
        .expect("a time");
    let app = TestApp::spawn_at(start, |_| {}).await;
    let admin = app.admin().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let draft = app
        .draft(
            &editor,
            crate::helpers::article("Patent ruling", "patents", &[], "The full story."),
        )
        .await;
    app.publish(&editor, &draft).await;
    let email = "grace@example.com";
    signs_up(&app, email, &["patents"], "web").await;
    let token = app.mailbox.nth(email, 1).await.token();
    app.clock.advance(Duration::minutes(5));
    let confirmed = app
        .post(
            &TestApp::browser(),
            "/api/v1/newsletter/confirm",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    app.mailbox.nth(email, 2).await;

    let sent = app
        .post(&admin, "/api/v1/admin/digests/2027-01-12/send", json!({}))
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    app.mailbox.nth(email, 3).await;
    app.clock.advance(Duration::hours(1));
    report_bounce(&app, &admin, email, "550 5.1.1 mailbox unavailable").await;

    let id = subscriber_id(&app, email);
    let html = page(&app, &admin, &format!("/admin/subscribers/{id}")).await;
    for shown in [
        "<h1>grace@example.com</h1>",
        "Mail to this address is suppressed",
        "Bounced on 12 January 2027",
        "550 5.1.1 mailbox unavailable",
        "Lift the suppression",
        "Subscribed",
        "Patents",
        "Sign-up form",
        &app.settings.newsletter.consent_text,
        "Given when signing up on 12 January 2027, 06:30 UTC; confirmed on 12 January 2027, 06:35 UTC",
        "Signed up with the sign-up form",
        "Confirm your subscription",
        "Confirmed",
        "Suppressed: bounced",
        "1 digest sent in the last",
        "the last on 12 January 2027",
        "No one on the staff has changed anything here.",
    ] {
        assert!(html.contains(shown), "{shown:?} missing from:\n{html}");
    }
    // Oldest first.
    let signed_up = html
        .find("Signed up with the sign-up form")
        .expect("signed up");
    let confirmed = html
        .find("<td data-label=\"What\">Confirmed")
        .expect("confirmed");
    let suppressed = html.find("Suppressed: bounced").expect("suppressed");
    assert!(signed_up < confirmed && confirmed < suppressed, "{html}");

    let (status, _) = app
        .page(
            &admin,
            &format!("/admin/subscribers/{}", uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.page(&admin, "/admin/subscribers/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_lifts_a_suppression_which_is_audited_and_needs_the_form_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let email = "refused@example.com";
    app.confirmed_subscriber(email, 0).await;
    report_bounce(&app, &admin, email, "550 no such user").await;
    // An erased subscriber leaves only the hash of their address.
    let welcome = app.confirmed_subscriber("erased@example.com", 0).await;
    let token = welcome.token();
    let erased = app
        .api
        .delete(app.url(&format!("/api/v1/newsletter/data?token={token}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);

    let list = page(&app, &admin, "/admin/subscribers/suppressions").await;
    assert!(
        list.contains("2 addresses get no newsletter mail"),
        "{list}"
    );
    assert!(list.contains("refused@example.com"), "{list}");
    assert!(list.contains("Bounced"), "{list}");
    assert!(list.contains("550 no such user"), "{list}");
    assert!(
        list.contains("Erased: only a fingerprint is kept"),
        "{list}"
    );
    assert!(!list.contains("erased@example.com"), "{list}");

    let hash = app
        .suppressions()
        .hash(&masthead::platform::domain::EmailAddress::parse(email).expect("valid"))
        .to_string();
    let action = format!("/admin/subscribers/suppressions/{hash}/lift");

    // Without the form token, or with a forged one, nothing is lifted.
    let refused = app
        .post_form(
            &admin,
            &action,
            "",
            &[("back", "/admin/subscribers/suppressions")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = app.post_form(&admin, &action, "forged", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(app.suppression(email).is_some());
    assert_eq!(
        audited(&app, SubjectKind::Suppression, &hash, "suppression.lift"),
        0
    );

    let lifted = app
        .submit(
            &admin,
            "/admin/subscribers/suppressions",
            &action,
            &[("back", "/admin/subscribers/suppressions")],
        )
        .await;
    let (to, html) = follow(&app, &admin, lifted).await;
    assert_eq!(to, "/admin/subscribers/suppressions");
    assert!(
        html.contains(
            "The suppression of refused@example.com is lifted: newsletter mail can go to it again."
        ),
        "{html}"
    );
    assert!(html.contains("1 address gets no newsletter mail"), "{html}");
    assert!(app.suppression(email).is_none());
    assert_eq!(
        audited(&app, SubjectKind::Suppression, &hash, "suppression.lift"),
        1
    );

    // The subscriber's page says who lifted it.
    let id = subscriber_id(&app, email);
    let html = page(&app, &admin, &format!("/admin/subscribers/{id}")).await;
    assert!(
        !html.contains("Mail to this address is suppressed"),
        "{html}"
    );
    assert!(html.contains("Lifted the suppression"), "{html}");
    assert!(html.contains("Grace Hopper"), "{html}");

    // Twice is harmless and says so; a page elsewhere is not where it goes.
    let again = app
        .submit(
            &admin,
            "/admin/subscribers/suppressions",
            &action,
            &[("back", "https://evil.example/")],
        )
        .await;
    let (to, html) = follow(&app, &admin, again).await;
    assert_eq!(to, "/admin/subscribers/suppressions");
    assert!(html.contains("was not on the suppression list"), "{html}");
    assert_eq!(
        audited(&app, SubjectKind::Suppression, &hash, "suppression.lift"),
        1
    );

    // The JSON API lifts through the same service, and is audited too.
    let suppressions = app
        .get_json(&admin, "/api/v1/admin/newsletter/suppressions")
        .await;
    let erased_hash = suppressions["suppressions"][0]["id"]
        .as_str()
        .expect("the erased address")
        .to_owned();
    let deleted = admin
        .delete(app.url(&format!(
            "/api/v1/admin/newsletter/suppressions/{erased_hash}"
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        audited(
            &app,
            SubjectKind::Suppression,
            &erased_hash,
            "suppression.lift"
        ),
        1
    );
}

#[tokio::test]
async fn accounts_are_found_by_name_or_address_and_filtered_by_role() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.editor().await;
    let ada = registers(&app, "ada@engines.example", "Ada Lovelace").await;
    let percy = registers(&app, "percy@pure.example", "Percy 100% Pure").await;
    let found = |html: &str| {
        let mut ids = linked_ids(html, "/admin/accounts/");
        ids.sort();
        ids
    };

    let all = page(&app, &admin, "/admin/accounts").await;
    assert!(all.contains("4 accounts; newest first."), "{all}");
    for (query, expected) in [
        ("q=LOVELACE", vec![ada.clone()]),
        ("q=engines.EXAMPLE", vec![ada.clone()]),
        ("q=100%25", vec![percy.clone()]),
        ("q=%25", vec![percy.clone()]),
        ("q=_", vec![]),
        ("q=lovelace&role=reader", vec![ada.clone()]),
        ("q=lovelace&role=editor", vec![]),
    ] {
        let html = page(&app, &admin, &format!("/admin/accounts?{query}")).await;
        let mut expected = expected;
        expected.sort();
        assert_eq!(found(&html), expected, "{query}: {html}");
    }
    let editors = page(&app, &admin, "/admin/accounts?role=editor").await;
    assert!(editors.contains("1 account matches."), "{editors}");
    assert!(editors.contains(">Editor</span>"), "{editors}");
    let readers = page(&app, &admin, "/admin/accounts?role=reader").await;
    assert!(readers.contains("2 accounts match"), "{readers}");
    assert!(readers.contains("(not verified)"), "{readers}");

    let (status, raw) = app
        .page(&admin, &format!("/admin/accounts?q={}", "y".repeat(300)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(raw.contains("<title>Error: Accounts"), "{raw}");
    let (status, _) = app.page(&admin, "/admin/accounts?role=emperor").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The admin API searches the same way.
    let api = app.get_json(&admin, "/api/v1/admin/accounts?q=pure").await;
    assert_eq!(api["total"], 1, "{api}");
    assert_eq!(api["accounts"][0]["name"], "Percy 100% Pure");
}

#[tokio::test]
async fn an_admin_changes_a_role_but_not_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (ada, ada_id) = reader(&app, "ada@example.com").await;
    let account = format!("/admin/accounts/{ada_id}");
    let action = format!("{account}/role");

    let refused = app
        .post_form(&admin, &action, "", &[("role", "editor")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_json(&ada, "/api/v1/me").await["role"], "reader");

    let changed = app
        .submit(&admin, &account, &action, &[("role", "editor")])
        .await;
    let (to, html) = follow(&app, &admin, changed).await;
    assert_eq!(to, account);
    assert!(html.contains("Ada Lovelace is now an editor."), "{html}");
    assert_eq!(app.get_json(&ada, "/api/v1/me").await["role"], "editor");
    assert!(html.contains("Changed the role"), "{html}");
    assert!(html.contains("from reader to editor"), "{html}");
    assert_eq!(
        audited(&app, SubjectKind::Account, &ada_id, "account.role"),
        1
    );

    // The same role again changes and records nothing.
    let same = app
        .submit(&admin, &account, &action, &[("role", "editor")])
        .await;
    let (_, html) = follow(&app, &admin, same).await;
    assert!(
        html.contains("Ada Lovelace was already an editor; nothing changed."),
        "{html}"
    );
    assert_eq!(
        audited(&app, SubjectKind::Account, &ada_id, "account.role"),
        1
    );

    // Their own page offers no role form, and the service refuses anyway.
    let admin_id = app.get_json(&admin, "/api/v1/me").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let own = format!("/admin/accounts/{admin_id}");
    let html = page(&app, &admin, &own).await;
    assert!(html.contains("This is your own account"), "{html}");
    assert!(!html.contains("Change role"), "{html}");
    let refused = app
        .submit(&admin, &own, &format!("{own}/role"), &[("role", "reader")])
        .await;
    let (_, html) = follow(&app, &admin, refused).await;
    assert!(
        html.contains("You cannot change your own role; another admin can."),
        "{html}"
    );
    assert_eq!(app.get_json(&admin, "/api/v1/me").await["role"], "admin");
    assert_eq!(
        audited(&app, SubjectKind::Account, &admin_id, "account.role"),
        0
    );

    let bad = app
        .submit(&admin, &account, &action, &[("role", "emperor")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_admin_grants_access_with_dates_and_revokes_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (ada, ada_id) = reader(&app, "ada@example.com").await;
    let account = format!("/admin/accounts/{ada_id}");
    let grants = format!("{account}/grants");
    let me = |client: reqwest::Client| {
        let app = &app;
        async move { app.get_json(&client, "/api/v1/me").await["access"].clone() }
    };
    assert_eq!(me(ada.clone()).await["reason"], "no_subscription");

    let today = app.now().date_naive();
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let in_30 = today + Duration::days(30);

    // The form offers a month from today.
    let html = page(&app, &admin, &account).await;
    assert!(
        html.contains(&format!("value=\"{}\"", day(today))),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{}\"", day(in_30))),
        "{html}"
    );

    let refused = app
        .post_form(&admin, &grants, "", &[("ends_at", &day(in_30))])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Errors come back beside their fields, with what was typed.
    let wrong = app
        .submit(
            &admin,
            &account,
            &grants,
            &[
                ("starts_at", &day(today)),
                ("ends_at", &day(today - Duration::days(1))),
                ("note", "Backwards"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_unescape(&wrong.text().await.expect("a page"));
    assert!(
        html.contains("<title>Error: Account: Ada Lovelace"),
        "{html}"
    );
    assert!(html.contains("href=\"#ends_at\""), "{html}");
    assert!(html.contains("The end must come after the start"), "{html}");
    assert!(html.contains(">Backwards</textarea>"), "{html}");
    let wrong = app
        .submit(&admin, &account, &grants, &[("ends_at", "31/12/2030")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_unescape(&wrong.text().await.expect("a page"));
    assert!(html.contains("Enter a date like 2030-01-31"), "{html}");
    assert!(html.contains("value=\"31/12/2030\""), "{html}");
    assert_eq!(me(ada.clone()).await["reason"], "no_subscription");

    let granted = app
        .submit(
            &admin,
            &account,
            &grants,
            &[
                ("starts_at", &day(today)),
                ("ends_at", &day(in_30)),
                ("note", "Conference speaker"),
            ],
        )
        .await;
    let (to, html) = follow(&app, &admin, granted).await;
    assert_eq!(to, account);
    let until = in_30.format("%-d %B %Y").to_string();
    assert!(
        html.contains(&format!(
            "Ada Lovelace can read everything from {}, ending on {until}.",
            today.format("%-d %B %Y")
        )),
        "{html}"
    );
    let access = me(ada.clone()).await;
    assert_eq!(access["level"], "full", "{access}");
    assert_eq!(access["reason"], "subscription", "{access}");
    let ends: chrono::DateTime<Utc> = access["until"]
        .as_str()
        .expect("an end")
        .parse()
        .expect("a time");
    assert_eq!(
        ends,
        in_30.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    );
    for shown in [
        "Granted by hand",
        "Active",
        "Conference speaker",
        "Grace Hopper",
        "Granted access",
        &format!("{until}, 00:00 UTC"),
    ] {
        assert!(html.contains(shown), "{shown:?} missing from:\n{html}");
    }

    // One that starts later gives no access yet.
    let later = app
        .submit(
            &admin,
            &account,
            &grants,
            &[
                ("starts_at", &day(in_30 + Duration::days(1))),
                ("ends_at", ""),
            ],
        )
        .await;
    let (_, html) = follow(&app, &admin, later).await;
    assert!(html.contains("with no end"), "{html}");
    assert!(html.contains("Not started"), "{html}");

    let entitlements = app
        .get_json(
            &admin,
            &format!("/api/v1/admin/accounts/{ada_id}/entitlements"),
        )
        .await;
    let active = entitlements["entitlements"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["state"] == "active")
        .and_then(|e| e["id"].as_str())
        .expect("the active grant")
        .to_owned();
    assert_eq!(
        audited(&app, SubjectKind::Entitlement, &active, "entitlement.grant"),
        1
    );

    let revoke = format!("{account}/entitlements/{active}/revoke");
    let refused = app.post_form(&admin, &revoke, "", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(me(ada.clone()).await["level"], "full");

    let revoked = app.submit(&admin, &account, &revoke, &[]).await;
    let (to, html) = follow(&app, &admin, revoked).await;
    assert_eq!(to, account);
    assert!(
        html.contains("Access revoked: it ended just now."),
        "{html}"
    );
    assert!(html.contains("Revoked access"), "{html}");
    let access = me(ada.clone()).await;
    assert_eq!(access["level"], "teaser", "{access}");
    assert_eq!(
        audited(
            &app,
            SubjectKind::Entitlement,
            &active,
            "entitlement.revoke"
        ),
        1
    );

    let again = app.submit(&admin, &account, &revoke, &[]).await;
    let (_, html) = follow(&app, &admin, again).await;
    assert!(html.contains("had already been revoked on"), "{html}");
    assert_eq!(
        audited(
            &app,
            SubjectKind::Entitlement,
            &active,
            "entitlement.revoke"
        ),
        1
    );

    // The JSON API grants through the same service, audited as well.
    let by_api = app
        .post(
            &admin,
            &format!("/api/v1/admin/accounts/{ada_id}/grants"),
            json!({}),
        )
        .await;
    assert_eq!(by_api.status(), StatusCode::CREATED);
    let by_api: Value = by_api.json().await.expect("json");
    let by_api = by_api["id"].as_str().expect("an id");
    assert_eq!(
        audited(&app, SubjectKind::Entitlement, by_api, "entitlement.grant"),
        1
    );
}

#[tokio::test]
async fn readers_and_editors_get_the_403_page() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let email = "held@example.com";
    app.confirmed_subscriber(email, 0).await;
    report_bounce(&app, &admin, email, "550").await;
    let subscriber = subscriber_id(&app, email);
    let (reader, reader_id) = reader(&app, "reader@example.com").await;
    let editor = app.editor().await;
    let hash = app
        .suppressions()
        .hash(&masthead::platform::domain::EmailAddress::parse(email).expect("valid"))
        .to_string();

    let pages = [
        "/admin/subscribers".to_owned(),
        "/admin/subscribers?q=held".to_owned(),
        "/admin/subscribers/suppressions".to_owned(),
        format!("/admin/subscribers/{subscriber}"),
        "/admin/accounts".to_owned(),
        format!("/admin/accounts/{reader_id}"),
    ];
    for path in &pages {
        for (who, client) in [("reader", &reader), ("editor", &editor)] {
            let response = app.get(client, path).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{who} on {path}");
            assert!(
                crate::helpers::header(&response, "content-type").starts_with("text/html"),
                "{who} on {path}"
            );
            let html = response.text().await.expect("a page");
            assert!(
                html.contains("You cannot do that here"),
                "{who} on {path}: {html}"
            );
            assert!(!html.contains(email), "{who} on {path}: {html}");
        }
        let anonymous = app.get(&TestApp::browser(), path).await;
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&anonymous).starts_with("/login?next="), "{path}");
    }

    // A genuine form token does not make an editor an admin.
    let posts = [
        (
            format!("/admin/subscribers/suppressions/{hash}/lift"),
            vec![],
        ),
        (
            format!("/admin/accounts/{reader_id}/role"),
            vec![("role", "admin")],
        ),
        (
            format!("/admin/accounts/{reader_id}/grants"),
            vec![("ends_at", "2099-01-01")],
        ),
    ];
    let (_, html) = app.page(&editor, "/account").await;
    let token = form_token(&html);
    for (action, fields) in &posts {
        let refused = app.post_form(&editor, action, &token, fields).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert!(app.suppression(email).is_some());
    assert_eq!(app.get_json(&reader, "/api/v1/me").await["role"], "reader");
    let mut conn = app.pool().get().expect("conn");
    let grants: i64 = masthead::platform::db::schema::entitlements::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(grants, 0);
}

#[tokio::test]
async fn an_admin_finds_a_subscriber_lifts_their_suppression_and_grants_a_month() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(
        "an_admin_finds_a_subscriber_lifts_their_suppression_and_grants_a_month",
        &app,
    )
    .await
    else {
        return;
    };
    let email = "ada@example.com";
    let (ada, _) = reader(&app, email).await;
    let subscribed = app
        .post(
            &ada,
            "/api/v1/newsletter/subscriptions",
            json!({ "email": email }),
        )
        .await;
    assert_eq!(subscribed.status(), StatusCode::ACCEPTED);
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    for other in ["grace@example.com", "alan@example.org"] {
        signs_up(&app, other, &["patents"], "web").await;
    }
    let helper = app.admin().await;
    report_bounce(&app, &helper, email, "550 5.1.1 user unknown").await;
    report_bounce(&app, &helper, "alan@example.org", "550 5.7.1 refused").await;

    let admin_email = "console@example.com";
    app.privileged(&TestApp::browser(), admin_email, "admin")
        .await;
    browser.goto("/login?next=/admin/subscribers").await;
    browser.fill_label("Email address", admin_email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_text("3 subscribers; newest first.").await;
    browser.screenshot("console-subscribers").await;
    browser.axe("the subscriber search").await;

    browser.fill_label("Address contains", "ADA@").await;
    browser.click_button("Find subscribers").await;
    browser.wait_for_text("1 subscriber matches.").await;
    browser.find("table.list a").await.click().await;
    let text = browser
        .wait_for_text("Mail to this address is suppressed")
        .await;
    assert!(text.contains("Ada Lovelace"), "the linked account: {text}");
    assert!(
        text.contains("and a new sign-up is ignored"),
        "a hard bounce blocks a new sign-up: {text}"
    );
    browser.screenshot("console-subscriber").await;
    browser.axe("a subscriber's page").await;

    browser.click_button("Lift the suppression").await;
    browser
        .wait_for_text("The suppression of ada@example.com is lifted")
        .await;
    assert!(app.suppression(email).is_none());
    assert!(browser.text().await.contains("Lifted the suppression"));

    browser.goto("/admin/subscribers/suppressions").await;
    browser
        .wait_for_text("1 address gets no newsletter mail")
        .await;
    browser.screenshot("console-suppressions").await;
    browser.axe("the suppression list").await;

    browser.goto("/admin/accounts").await;
    browser.wait_for_text("accounts; newest first.").await;
    browser.screenshot("console-accounts").await;
    browser.axe("the account search").await;
    browser.fill_label("Name or address contains", "ada@").await;
    browser.click_button("Find accounts").await;
    browser.wait_for_text("1 account matches.").await;
    browser.find("table.list a").await.click().await;
    browser.wait_for_text("Grant access").await;
    browser
        .fill_label("Note (optional)", "Conference speaker")
        .await;
    browser.click_button("Grant access").await;
    let text = browser
        .wait_for_text("Ada Lovelace can read everything from")
        .await;
    let in_30 = (app.now() + Duration::days(30))
        .format("%-d %B %Y")
        .to_string();
    assert!(text.contains(&format!("ending on {in_30}")), "{text}");
    browser.screenshot("console-account").await;
    browser.axe("an account's page").await;
    let access = app.get_json(&ada, "/api/v1/me").await["access"].clone();
    assert_eq!(access["reason"], "subscription", "{access}");
}
