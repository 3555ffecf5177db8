//! Company subscriptions: "does my company subscribe?", join links, seats
//! and the access they give, on both databases.

use std::sync::{Arc, Barrier};

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{article, assert_problem, form_token, location, TestApp, PASSWORD};

const SALES: &str = "sales@masthead.example";

/// A published article whose ending only full readers see; returns its
/// API path.
async fn paywalled(app: &TestApp) -> String {
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let body = "Opening paragraph for everyone.\n\nMiddle paragraph.\n\nSubscribers-only ending.";
    let draft = app
        .draft(&editor, article("Company story", "patents", &[], body))
        .await;
    app.publish(&editor, &draft).await;
    "/api/v1/articles/company-story".to_owned()
}

async fn access(app: &TestApp, client: &reqwest::Client, path: &str) -> (String, String) {
    let read = app.get_json(client, path).await;
    (
        read["access"].as_str().unwrap_or_default().to_owned(),
        read["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Creates an organisation subscribing from a day ago for `days` days.
async fn organisation(
    app: &TestApp,
    admin: &reqwest::Client,
    name: &str,
    domain: &str,
    seats: i64,
    days: i64,
) -> Value {
    let now = app.now();
    let response = app
        .post(
            admin,
            "/api/v1/admin/organizations",
            json!({
                "name": name,
                "seat_count": seats,
                "starts_at": now - Duration::days(1),
                "ends_at": now + Duration::days(days),
                "domains": [domain],
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("json")
}

fn id_of(organization: &Value) -> String {
    organization["id"].as_str().expect("an id").to_owned()
}

async fn check(app: &TestApp, email: &str) -> (StatusCode, String) {
    let response = app
        .post(
            &app.api,
            "/api/v1/company-access",
            json!({ "email": email }),
        )
        .await;
    (response.status(), response.text().await.expect("a body"))
}

/// Asks for a join link for `email` and returns its token.
async fn join_token(app: &TestApp, email: &str, nth: usize) -> String {
    assert_eq!(check(app, email).await.0, StatusCode::ACCEPTED);
    app.mailbox.nth(email, nth).await.token()
}

async fn confirm(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    app.post(
        client,
        "/api/v1/company-access/confirm",
        json!({ "token": token }),
    )
    .await
}

async fn patch(app: &TestApp, admin: &reqwest::Client, id: &str, body: Value) -> reqwest::Response {
    admin
        .patch(app.url(&format!("/api/v1/admin/organizations/{id}")))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn the_three_outcomes_answer_alike_and_send_the_right_email() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    organisation(&app, &admin, "Acme", "acme.com", 2, 365).await;
    let full = organisation(&app, &admin, "Fullco", "fullco.com", 0, 365).await;
    let manager = "boss@fullco.com";
    app.verified_reader(&TestApp::browser(), manager).await;
    let added = app
        .post(
            &admin,
            &format!("/api/v1/admin/organizations/{}/managers", id_of(&full)),
            json!({ "email": manager }),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);

    let free = check(&app, "ada@acme.com").await;
    let taken = check(&app, "Bob@FullCo.com").await;
    let none = check(&app, "cy@nowhere-corp.com").await;
    assert_eq!(free.0, StatusCode::ACCEPTED);
    assert_eq!(free, taken, "a full company answers like a free one");
    assert_eq!(free, none, "no company answers like a free one");

    let join = app.mailbox.nth("ada@acme.com", 1).await;
    assert!(join.subject().contains("Join Acme"), "{}", join.subject());
    assert!(join.text().contains("/company-access/join?token="));
    let seats_taken = app.mailbox.nth("bob@fullco.com", 1).await;
    assert!(seats_taken.subject().contains("seats are all taken"));
    let no_match = app.mailbox.nth("cy@nowhere-corp.com", 1).await;
    assert!(no_match.subject().contains("About your company"));
    assert!(no_match.text().contains("/trial") && no_match.text().contains("/contact-sales"));
    let to_sales = app.mailbox.nth(SALES, 1).await;
    assert!(
        to_sales.subject().contains("Fullco"),
        "{}",
        to_sales.subject()
    );
    app.mailbox.nth(manager, 2).await;

    // A second reader of the full company the same day: the reader is told,
    // the managers and sales are not told again.
    check(&app, "dee@fullco.com").await;
    app.mailbox.nth("dee@fullco.com", 1).await;
    assert_eq!(app.outbox(SALES).len(), 1, "sales notified once a day");
    assert_eq!(app.outbox(manager).len(), 2, "verification + one notice");
    // The next day, again.
    app.clock.advance(Duration::days(1));
    check(&app, "eve@fullco.com").await;
    app.mailbox.nth(SALES, 2).await;

    let invalid = app
        .post(
            &app.api,
            "/api/v1/company-access",
            json!({ "email": "not an address" }),
        )
        .await;
    assert_problem(invalid, StatusCode::UNPROCESSABLE_ENTITY, Some("email")).await;
}

#[tokio::test]
async fn a_join_link_works_once_before_it_expires_and_only_for_its_address() {
    let app = TestApp::spawn().await;
    let story = paywalled(&app).await;
    let admin = app.admin().await;
    organisation(&app, &admin, "Acme", "acme.com", 5, 365).await;
    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.com").await;
    let bob = TestApp::browser();
    app.verified_reader(&bob, "bob@acme.com").await;
    assert_eq!(access(&app, &ada, &story).await.0, "teaser");

    let token = join_token(&app, "ada@acme.com", 2).await;
    // Opening the link changes nothing.
    let (status, html) = app
        .page(&ada, &format!("/company-access/join?token={token}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Join Acme"), "{html}");
    // Another reader, even of the same company, cannot use it.
    let wrong = confirm(&app, &bob, &token).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Not logged in: 401.
    assert_eq!(
        confirm(&app, &TestApp::browser(), &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let joined = confirm(&app, &ada, &token).await;
    assert_eq!(joined.status(), StatusCode::OK);
    let joined: Value = joined.json().await.expect("json");
    assert_eq!(joined["organization"], "Acme");
    assert_eq!(
        access(&app, &ada, &story).await,
        ("full".to_owned(), "company_seat".to_owned())
    );
    let me = app.get_json(&ada, "/api/v1/me").await;
    assert!(me.to_string().contains("company_seat"), "{me}");

    // Used once: a second use fails.
    let again = confirm(&app, &ada, &token).await;
    assert_problem(again, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;
    let (status, _) = app
        .page(&ada, &format!("/company-access/join?token={token}"))
        .await;
    assert_eq!(status, StatusCode::GONE);

    // Expired: two days and an hour later it no longer works.
    let late = join_token(&app, "bob@acme.com", 2).await;
    app.clock.advance(Duration::hours(49));
    let expired = confirm(&app, &bob, &late).await;
    assert_problem(expired, StatusCode::UNPROCESSABLE_ENTITY, Some("token")).await;
    assert_eq!(access(&app, &bob, &story).await.0, "teaser");
}

#[test]
fn fifty_concurrent_claims_of_the_last_seat_give_exactly_one() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let app = runtime.block_on(TestApp::spawn());
    let admin = runtime.block_on(app.admin());
    let created = runtime.block_on(organisation(&app, &admin, "Acme", "acme.com", 1, 30));
    let id: masthead::organizations::model::OrganizationId =
        id_of(&created).parse().expect("an id");
    let pool = app.pool();
    let now = app.now();
    let accounts: Vec<masthead::accounts::AccountId> = (0..50)
        .map(|n| {
            let id = masthead::accounts::AccountId::new();
            let email = masthead::platform::domain::EmailAddress::parse(&format!("r{n}@acme.com"))
                .expect("valid");
            let mut conn = pool.get().expect("conn");
            masthead::accounts::store::insert(
                &mut conn,
                &masthead::accounts::model::NewAccount {
                    id,
                    email: &email,
                    name: "Reader",
                    company: None,
                    job_title: None,
                    password_hash: "not a hash",
                    role: masthead::accounts::Role::Reader,
                    email_verified_at: Some(now.naive_utc()),
                    created_at: now.naive_utc(),
                    updated_at: now.naive_utc(),
                },
            )
            .expect("inserted");
            id
        })
        .collect();
    let organization = {
        let mut conn = pool.get().expect("conn");
        masthead::organizations::store::find(&mut conn, id)
            .expect("query")
            .expect("found")
    };
    let start = Arc::new(Barrier::new(accounts.len()));
    let claims: Vec<_> = accounts
        .into_iter()
        .map(|account| {
            let pool = pool.clone();
            let start = Arc::clone(&start);
            let organization = organization.clone();
            std::thread::spawn(move || {
                // All at once; the pool hands out its connections as
                // claims finish, so as many run together as it allows.
                start.wait();
                let mut conn = pool.get().expect("conn");
                masthead::platform::db::transaction(&mut conn, |conn| {
                    masthead::organizations::service::take_seat(conn, &organization, account, now)
                })
            })
        })
        .collect();
    let outcomes: Vec<_> = claims
        .into_iter()
        .map(|c| c.join().expect("a claim"))
        .collect();
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let full = outcomes
        .iter()
        .filter(|o| matches!(o, Err(masthead::organizations::OrganizationError::Full)))
        .count();
    assert_eq!((won, full), (1, 49), "{outcomes:?}");
    let detail = runtime.block_on(app.get_json(
        &admin,
        &format!("/api/v1/admin/organizations/{}", id_of(&created)),
    ));
    assert_eq!(detail["seats_used"], 1);
    assert_eq!(detail["members"].as_array().expect("members").len(), 1);
}

#[tokio::test]
async fn access_follows_the_organisations_period() {
    let app = TestApp::spawn().await;
    let story = paywalled(&app).await;
    let admin = app.admin().await;
    let acme = organisation(&app, &admin, "Acme", "acme.com", 3, 30).await;
    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.com").await;
    let token = join_token(&app, "ada@acme.com", 2).await;
    assert_eq!(confirm(&app, &ada, &token).await.status(), StatusCode::OK);
    assert_eq!(access(&app, &ada, &story).await.1, "company_seat");

    // Renewed for 30 more days: the member's access moves with it.
    let renewed = patch(
        &app,
        &admin,
        &id_of(&acme),
        json!({ "ends_at": app.now() + Duration::days(60) }),
    )
    .await;
    assert_eq!(renewed.status(), StatusCode::OK);
    // (Sessions end long before: log in again after each jump.)
    app.clock.advance(Duration::days(45));
    app.login_with(&ada, "ada@acme.com", PASSWORD).await;
    assert_eq!(access(&app, &ada, &story).await.1, "company_seat");
    app.clock.advance(Duration::days(16));
    app.login_with(&ada, "ada@acme.com", PASSWORD).await;
    assert_eq!(
        access(&app, &ada, &story).await,
        ("teaser".to_owned(), "company_subscription_ended".to_owned())
    );
    // An ended subscription offers no seat.
    check(&app, "bob@acme.com").await;
    let mail = app.mailbox.nth("bob@acme.com", 1).await;
    assert!(
        mail.subject().contains("About your company"),
        "{}",
        mail.subject()
    );
}

#[tokio::test]
async fn removing_a_member_cuts_access_at_once_and_frees_the_seat() {
    let app = TestApp::spawn().await;
    let story = paywalled(&app).await;
    let admin = app.admin().await;
    let acme = organisation(&app, &admin, "Acme", "acme.com", 1, 30).await;
    let id = id_of(&acme);
    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.com").await;
    let token = join_token(&app, "ada@acme.com", 2).await;
    assert_eq!(confirm(&app, &ada, &token).await.status(), StatusCode::OK);

    // No seat left for Bob; fewer seats than members is refused.
    check(&app, "bob@acme.com").await;
    assert!(app
        .mailbox
        .nth("bob@acme.com", 1)
        .await
        .subject()
        .contains("seats are all taken"));
    let shrink = patch(&app, &admin, &id, json!({ "seat_count": 0 })).await;
    let problem =
        assert_problem(shrink, StatusCode::UNPROCESSABLE_ENTITY, Some("seat_count")).await;
    assert!(
        problem.to_string().contains("1 seat is in use"),
        "{problem}"
    );

    let members = app
        .get_json(&admin, &format!("/api/v1/admin/organizations/{id}/members"))
        .await;
    let member = members[0]["id"].as_str().expect("a member").to_owned();
    let removed = admin
        .delete(app.url(&format!(
            "/api/v1/admin/organizations/{id}/members/{member}"
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.expect("json");
    assert_eq!(removed["seats_used"], 0);
    assert_eq!(access(&app, &ada, &story).await.0, "teaser");

    // The seat is free again: Bob gets a join link (after the repeat window).
    app.clock.advance(Duration::minutes(11));
    check(&app, "bob@acme.com").await;
    assert!(app
        .mailbox
        .nth("bob@acme.com", 2)
        .await
        .subject()
        .contains("Join Acme"));
}

#[tokio::test]
async fn a_trial_is_refused_while_the_company_has_a_free_seat_and_closed_on_joining() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    organisation(&app, &admin, "Acme", "acme.com", 2, 30).await;
    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.com").await;
    let refused = app.request_trial(&ada, "Acme").await;
    let problem = assert_problem(refused, StatusCode::CONFLICT, None).await;
    assert_eq!(problem["reason"], "company_access");
    // The trial page says why, with the way to the seat.
    let (_, html) = app.page(&ada, "/trial").await;
    let token = form_token(&html);
    let page = app
        .post_form(
            &ada,
            "/trial",
            &token,
            &[
                ("company", "Acme"),
                ("job_title", "Counsel"),
                ("reason", ""),
            ],
        )
        .await;
    let html = page.text().await.expect("html");
    assert!(html.contains("href=\"/company-access\""), "{html}");

    // A reader whose company subscribes later: their waiting request is
    // closed when they join.
    let zed = TestApp::browser();
    app.verified_reader(&zed, "zed@initrode.com").await;
    assert_eq!(
        app.request_trial(&zed, "Initrode").await.status(),
        StatusCode::CREATED
    );
    organisation(&app, &admin, "Initrode", "initrode.com", 2, 30).await;
    assert_eq!(
        check(&app, "zed@initrode.com").await.0,
        StatusCode::ACCEPTED
    );
    let token = app
        .mailbox
        .with_subject("zed@initrode.com", "Join Initrode")
        .await
        .token();
    assert_eq!(confirm(&app, &zed, &token).await.status(), StatusCode::OK);
    let mine = app.get_json(&zed, "/api/v1/trials/mine").await;
    assert_eq!(mine["status"], "rejected", "{mine}");
    let again = app.request_trial(&zed, "Initrode").await;
    let problem = assert_problem(again, StatusCode::CONFLICT, None).await;
    assert_eq!(problem["reason"], "already_has_access");
}

#[tokio::test]
async fn domains_are_unique_and_never_free_mail() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let acme = organisation(&app, &admin, "Acme", "Acme.COM", 2, 30).await;
    assert_eq!(acme["domains"], json!(["acme.com"]));
    let taken = app
        .post(
            &admin,
            "/api/v1/admin/organizations",
            json!({ "name": "Other", "seat_count": 1, "ends_at": app.now() + Duration::days(9), "domains": ["acme.com"] }),
        )
        .await;
    assert_problem(taken, StatusCode::UNPROCESSABLE_ENTITY, Some("domain")).await;
    let free_mail = app
        .post(
            &admin,
            &format!("/api/v1/admin/organizations/{}/domains", id_of(&acme)),
            json!({ "domain": "gmail.com" }),
        )
        .await;
    assert_problem(free_mail, StatusCode::UNPROCESSABLE_ENTITY, Some("domain")).await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "someone@example.org").await;
    assert_eq!(
        app.get(&reader, "/api/v1/admin/organizations")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_manager_sees_and_removes_only_their_own_members() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let acme = organisation(&app, &admin, "Acme", "acme.com", 3, 30).await;
    let other = organisation(&app, &admin, "Globex", "globex.com", 3, 30).await;
    let boss = TestApp::browser();
    app.verified_reader(&boss, "boss@acme.com").await;
    let added = app
        .post(
            &admin,
            &format!("/api/v1/admin/organizations/{}/managers", id_of(&acme)),
            json!({ "email": "boss@acme.com" }),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.com").await;
    let token = join_token(&app, "ada@acme.com", 2).await;
    assert_eq!(confirm(&app, &ada, &token).await.status(), StatusCode::OK);

    let mine = app
        .get_json(
            &boss,
            &format!("/api/v1/admin/organizations/{}/members", id_of(&acme)),
        )
        .await;
    assert_eq!(mine[0]["email"], "ada@acme.com");
    assert_eq!(
        app.get(
            &boss,
            &format!("/api/v1/admin/organizations/{}", id_of(&other))
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let member = mine[0]["id"].as_str().expect("an id");
    let removed = boss
        .delete(app.url(&format!(
            "/api/v1/admin/organizations/{}/members/{member}",
            id_of(&acme)
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(removed.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_pages_check_a_company_and_join_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    organisation(&app, &admin, "Acme", "acme.com", 2, 30).await;
    let ada = TestApp::browser();

    let sent = app
        .submit(
            &ada,
            "/company-access",
            "/company-access",
            &[("email", "ada@acme.com")],
        )
        .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&sent), "/company-access/check-email");
    let other = app
        .submit(
            &ada,
            "/company-access",
            "/company-access",
            &[("email", "x@nowhere-corp.com")],
        )
        .await;
    assert_eq!(location(&other), "/company-access/check-email");
    let bad = app
        .submit(
            &ada,
            "/company-access",
            "/company-access",
            &[("email", "nope")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let link = app.mailbox.nth("ada@acme.com", 1).await.token();
    let join = format!("/company-access/join?token={link}");
    // Not logged in: the page asks to log in and come back.
    let (status, html) = app.page(&ada, &join).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("/login?next="), "{html}");
    // Registered and logged in with that address (the link proves it: no
    // need to confirm first).
    assert_eq!(
        app.register("ada@acme.com", PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.login_with(&ada, "ada@acme.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let joined = app
        .submit(&ada, &join, "/company-access/join", &[("token", &link)])
        .await;
    assert_eq!(joined.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&joined), "/");
    let me = app.get_json(&ada, "/api/v1/me").await;
    assert!(me.to_string().contains("company_seat"), "{me}");
    assert_eq!(
        me["email_verified"], true,
        "following the link proved the address"
    );
}

#[tokio::test]
async fn the_console_adds_an_organisation_refuses_a_shrink_and_removes_a_member() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (status, html) = app.page(&admin, "/admin/organizations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("aria-current=\"page\">Companies"), "{html}");
    let ends = (app.now() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let added = app
        .submit(
            &admin,
            "/admin/organizations",
            "/admin/organizations",
            &[
                ("name", "Acme"),
                ("domains", "acme.com, acme.co.uk"),
                ("seat_count", "1"),
                ("starts_on", ""),
                ("ends_on", &ends),
                ("notes", "Signed by the legal team"),
            ],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let page = location(&added);
    let (_, html) = app.page(&admin, &page).await;
    assert!(
        html.contains("acme.co.uk") && html.contains("0 of 1 in use"),
        "{html}"
    );
    let refused = app
        .submit(
            &admin,
            &page,
            "/admin/organizations",
            &[
                ("name", "Acme"),
                ("domains", "gmail.com"),
                ("seat_count", "1"),
                ("ends_on", &ends),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.co.uk").await;
    let token = join_token(&app, "ada@acme.co.uk", 2).await;
    assert_eq!(confirm(&app, &ada, &token).await.status(), StatusCode::OK);

    let shrink = app
        .submit(
            &admin,
            &page,
            &page,
            &[
                ("name", "Acme"),
                ("seat_count", "0"),
                ("starts_on", ""),
                ("ends_on", &ends),
                ("notes", ""),
            ],
        )
        .await;
    assert_eq!(shrink.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = shrink.text().await.expect("html");
    assert!(html.contains("1 seat is in use"), "{html}");

    let (_, html) = app.page(&admin, &page).await;
    assert!(html.contains("ada@acme.co.uk"), "{html}");
    let remove = html
        .split("action=\"")
        .filter_map(|s| s.split('"').next())
        .find(|a| a.contains("/members/"))
        .expect("a remove form")
        .to_owned();
    let removed = app.submit(&admin, &page, &remove, &[]).await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page(&admin, &page).await;
    assert!(
        html.contains("0 of 1 in use") && html.contains("No one has joined yet"),
        "{html}"
    );
    let (_, audit) = app.page(&admin, "/admin/audit").await;
    for action in [
        "organization.create",
        "organization.join",
        "organization.remove_member",
    ] {
        assert!(audit.contains(action), "{action} not in the audit trail");
    }
}

#[tokio::test]
async fn a_manager_removes_a_member_on_the_company_page() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let acme = organisation(&app, &admin, "Acme", "acme.com", 3, 30).await;
    let boss = TestApp::browser();
    app.verified_reader(&boss, "boss@acme.com").await;
    let (_, html) = app.page(&boss, "/company").await;
    assert!(
        html.contains("You do not manage a company subscription"),
        "{html}"
    );
    app.post(
        &admin,
        &format!("/api/v1/admin/organizations/{}/managers", id_of(&acme)),
        json!({ "email": "boss@acme.com" }),
    )
    .await;
    let ada = TestApp::browser();
    app.verified_reader(&ada, "ada@acme.com").await;
    let token = join_token(&app, "ada@acme.com", 2).await;
    assert_eq!(confirm(&app, &ada, &token).await.status(), StatusCode::OK);

    let (status, html) = app.page(&boss, "/company").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("ada@acme.com") && html.contains("1 of 3 seats"),
        "{html}"
    );
    let remove = html
        .split("action=\"")
        .filter_map(|s| s.split('"').next())
        .find(|a| a.contains("/members/"))
        .expect("a remove form")
        .to_owned();
    let removed = app.submit(&boss, "/company", &remove, &[]).await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page(&boss, "/company").await;
    assert!(html.contains("No one has joined yet"), "{html}");
    // A reader who manages nothing cannot remove anyone.
    let forged = app.submit(&ada, "/company", &remove, &[]).await;
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
}
