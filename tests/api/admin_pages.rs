//! The admins' trial queue as pages: who may see them, what they show
//! (filters, each request's applicant and history), and that their buttons
//! decide, undo, decide in bulk and end trials exactly as the JSON API
//! does, with every action in the audit trail.

use chrono::Duration;
use masthead::platform::audit::model::SubjectKind;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{form_token, html_unescape, location, TestApp, PASSWORD};

const QUEUE: &str = "/admin/trials";

/// An admin called `name`, made with `masthead admin create`, logged in.
pub async fn admin_named(app: &TestApp, name: &str) -> (reqwest::Client, String) {
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let out = app.cli(
        &[
            "admin", "create", "--email", &email, "--role", "admin", "--name", name,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "admin create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    (client, email)
}

/// "10:05 UTC on 26 November 2026", as the pages write a time in a sentence.
fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%H:%M UTC on %-d %B %Y").to_string()
}

/// The audit trail of one request, as (action, actor's id) oldest first.
fn audit_of(app: &TestApp, id: &str) -> Vec<(String, Option<String>)> {
    let mut conn = app.pool().get().expect("conn");
    masthead::platform::audit::store::of_subject(&mut conn, SubjectKind::Trial, id)
        .expect("query")
        .into_iter()
        .map(|e| (e.action, e.actor_id.map(|a| a.to_string())))
        .collect()
}

/// The rows of a request page's history table, each as its cells' text.
fn history_rows(html: &str) -> Vec<Vec<String>> {
    let table = html
        .split("<h2>History</h2>")
        .nth(1)
        .and_then(|rest| rest.split("<tbody>").nth(1))
        .and_then(|rest| rest.split("</tbody>").next())
        .unwrap_or_else(|| panic!("no history in:\n{html}"));
    table
        .split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = cell.split_once('>').map_or("", |(_, t)| t);
                    text.split("</td>")
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .collect()
        })
        .collect()
}

/// The id of the account `client` is logged in as.
async fn my_id(app: &TestApp, client: &reqwest::Client) -> String {
    app.get_json(client, "/api/v1/me").await["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

/// A verified, logged-in reader called `name`.
pub async fn reader_named(app: &TestApp, email: &str, name: &str) -> reqwest::Client {
    let registered = app
        .post(
            &app.api,
            "/api/v1/accounts",
            json!({ "email": email, "password": PASSWORD, "name": name }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let token = app.mailbox.nth(email, 1).await.token();
    let verified = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let client = TestApp::browser();
    assert_eq!(
        app.login_with(&client, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    client
}

/// Asks for a trial for `company`; returns the request's id.
pub async fn asks(app: &TestApp, reader: &reqwest::Client, company: &str) -> String {
    let response = app.request_trial(reader, company).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let trial: Value = response.json().await.expect("json");
    trial["id"].as_str().expect("an id").to_owned()
}

async fn status_of(app: &TestApp, reader: &reqwest::Client) -> String {
    app.get_json(reader, "/api/v1/trials/mine").await["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

/// The queue as the admin sees it, entities undone so that text can be
/// looked for as written.
async fn queue_page(app: &TestApp, admin: &reqwest::Client) -> String {
    let (status, html) = app.page(admin, QUEUE).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    html_unescape(&html)
}

/// Follows a redirect with the same browser; returns where it went and the
/// page there (with its flash).
async fn follow(
    app: &TestApp,
    client: &reqwest::Client,
    response: reqwest::Response,
) -> (String, String) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response);
    let (status, html) = app.page(client, &to).await;
    assert_eq!(status, StatusCode::OK, "{to}: {html}");
    (to, html_unescape(&html))
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_admins_see_the_queue_and_only_admins_decide() {
    let app = TestApp::spawn().await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;

    let anonymous = TestApp::browser();
    let response = app.get(&anonymous, QUEUE).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fadmin%2Ftrials");

    let response = app.get(&reader, QUEUE).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(content_type(&response).starts_with("text/html"));
    let html = response.text().await.expect("a page");
    assert!(html.contains("You cannot do that here"), "{html}");
    assert!(!html.contains("Analytical Engines"), "{html}");

    let editor = app.editor().await;
    assert_eq!(
        app.get(&editor, QUEUE).await.status(),
        StatusCode::FORBIDDEN
    );

    // A reader with a genuine form token still may not decide.
    let approve = format!("{QUEUE}/{id}/approve");
    let refused = app.submit(&reader, "/trial", &approve, &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(content_type(&refused).starts_with("text/html"));
    let refused = app.submit(&anonymous, "/login", &approve, &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&app, &reader).await, "pending");
}

#[tokio::test]
async fn an_admin_sees_each_waiting_request_oldest_first_with_its_flags() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let early = reader_named(&app, "grace@gmail.com", "Grace Early").await;
    asks(&app, &early, "Navy Research").await;
    app.clock.advance(Duration::hours(47));
    let late = reader_named(&app, "ada@analyticalengines.com", "Ada Later").await;
    app.clock.advance(Duration::hours(2));
    asks(&app, &late, "Analytical Engines").await;

    let html = queue_page(&app, &admin).await;
    assert!(
        html.contains("2 waiting, 1 past the 48-hour promise"),
        "{html}"
    );
    let (first, second) = (
        html.find("Grace Early").expect("the early request"),
        html.find("Ada Later").expect("the late request"),
    );
    assert!(first < second, "oldest first");
    let (grace, ada) = html.split_at(second);
    for shown in [
        "grace@gmail.com",
        "Navy Research",
        "Patent attorney",
        "Following a case",
        "(49 hours ago)",
        "Uses a free email address, not a company one",
        "The account was less than 30 minutes old when it asked",
        "status-tag--overdue",
        "Overdue",
    ] {
        assert!(grace.contains(shown), "{shown} missing from:\n{grace}");
    }
    // Both asked from the test's loopback address.
    assert!(
        ada.contains("Analytical Engines")
            && ada.contains("Another request came from the same IP address in the last 30 days"),
        "{ada}"
    );
    assert!(!ada.contains("Overdue"), "{ada}");
    assert_eq!(
        html.matches(">Approve<span class=\"visually-hidden\">")
            .count(),
        2
    );
    assert_eq!(
        html.matches(">Reject<span class=\"visually-hidden\">")
            .count(),
        2
    );
}

#[tokio::test]
async fn approving_on_the_page_starts_the_trial_and_a_second_approval_is_told_who_decided() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_named(&app, "Ann Admin").await;
    let (other_admin, _) = admin_named(&app, "Bob Second").await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    let approve = format!("{QUEUE}/{id}/approve");
    // The second admin has the page open before the first decides.
    let (_, stale) = app.page(&other_admin, QUEUE).await;

    let decided_at = app.now();
    let approved = app.submit(&admin, QUEUE, &approve, &[]).await;
    let (to, html) = follow(&app, &admin, approved).await;
    assert_eq!(to, format!("{QUEUE}?decided={id}"));
    assert!(
        html.contains("You approved Ada Lovelace's request (Analytical Engines). You can undo this for 10 minutes"),
        "{html}"
    );
    assert!(
        html.contains(&format!("action=\"/admin/trials/{id}/undo\"")),
        "{html}"
    );
    assert!(html.contains(">Undo<span"), "{html}");
    assert!(
        html.contains("Nothing is waiting for a decision."),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "approved");

    let again = app
        .post_form(&other_admin, &approve, &form_token(&stale), &[])
        .await;
    let (to, html) = follow(&app, &other_admin, again).await;
    assert_eq!(to, QUEUE);
    let told = format!(
        "Ada Lovelace's request (Analytical Engines) was already decided by Ann Admin at {}: approved. Nothing was changed.",
        when(decided_at)
    );
    assert!(html.contains(&told), "{told}\n{html}");
    assert!(html.contains("class=\"flash flash--info\""), "{html}");
    assert_eq!(status_of(&app, &reader).await, "approved");

    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let started = app.mailbox.nth("ada@analyticalengines.com", 3).await;
    assert!(
        started.subject().contains("trial has started"),
        "{}",
        started.subject()
    );
}

#[tokio::test]
async fn a_rejection_needs_a_reason_and_a_decision_can_be_undone_within_its_minutes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let email = "bob@globex.com";
    let reader = reader_named(&app, email, "Bob Globex").await;
    let id = asks(&app, &reader, "Globex").await;
    let reject = format!("{QUEUE}/{id}/reject");

    let unexplained = app
        .submit(&admin, QUEUE, &reject, &[("reason", "  ")])
        .await;
    assert_eq!(unexplained.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html_unescape(&unexplained.text().await.expect("a page"));
    assert!(html.contains("<title>Error: Trial requests"), "{html}");
    assert!(html.contains(&format!("href=\"#reason-{id}\"")), "{html}");
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert_eq!(status_of(&app, &reader).await, "pending");

    let reason = "We could not confirm your role at Globex.";
    let rejected = app
        .submit(&admin, QUEUE, &reject, &[("reason", reason)])
        .await;
    let (_, html) = follow(&app, &admin, rejected).await;
    assert!(
        html.contains(
            "You turned down Bob Globex's request (Globex). You can undo this for 10 minutes"
        ),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "rejected");
    let note = app
        .get_json(&admin, "/api/v1/admin/trials?status=rejected")
        .await;
    assert_eq!(note["requests"][0]["decision_note"], reason);

    let undo = format!("{QUEUE}/{id}/undo");
    let undone = app
        .submit(&admin, &format!("{QUEUE}?decided={id}"), &undo, &[])
        .await;
    let (_, html) = follow(&app, &admin, undone).await;
    assert!(
        html.contains("The decision on Bob Globex's request (Globex) is undone"),
        "{html}"
    );
    assert!(html.contains("1 waiting"), "{html}");
    assert_eq!(status_of(&app, &reader).await, "pending");
    // The rejection's email was withdrawn with it.
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes + 1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.mailbox
            .to(email)
            .iter()
            .all(|m| !m.subject().starts_with("Your Masthead trial request")),
        "no rejection email after an undo"
    );

    // Past its minutes, a decision stands.
    let approved = app
        .submit(&admin, QUEUE, &format!("{QUEUE}/{id}/approve"), &[])
        .await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let (status, page) = app.page(&admin, &format!("{QUEUE}?decided={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains(">Undo<span"),
        "no undo once the minutes are up"
    );
    let late = app.submit(&admin, QUEUE, &undo, &[]).await;
    let (_, html) = follow(&app, &admin, late).await;
    assert!(
        html.contains("The decision on Bob Globex's request (Globex) can no longer be undone"),
        "{html}"
    );
    assert_eq!(status_of(&app, &reader).await, "approved");
}

#[tokio::test]
async fn a_decision_without_the_form_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    queue_page(&app, &admin).await;

    for action in ["approve", "reject"] {
        let path = format!("{QUEUE}/{id}/{action}");
        let bare = admin
            .post(app.url(&path))
            .header("Origin", &app.address)
            .form(&[("reason", "No token")])
            .send()
            .await
            .expect("sent");
        assert_eq!(bare.status(), StatusCode::FORBIDDEN, "{action}");
        assert!(content_type(&bare).starts_with("text/html"));
        let forged = app
            .post_form(&admin, &path, "forged", &[("reason", "Forged token")])
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(status_of(&app, &reader).await, "pending");
    let html = queue_page(&app, &admin).await;
    assert!(
        html.contains("1 waiting") && html.contains("Ada Lovelace"),
        "{html}"
    );
}

/// Approves `id` through the JSON API and lets its undo period pass, so the
/// "trial has started" email goes; returns the reader's trial entitlement.
async fn approved_and_started(
    app: &TestApp,
    admin: &reqwest::Client,
    reader: &reqwest::Client,
    id: &str,
    email: &str,
) -> String {
    let approved = app
        .post(
            admin,
            &format!("/api/v1/admin/trials/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved.status(), StatusCode::OK);
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    app.mailbox.with_subject(email, "trial has started").await;
    let me = app.get_json(reader, "/api/v1/me").await;
    assert_eq!(me["access"]["reason"], "trial", "{me}");
    me["entitlements"][0]["id"]
        .as_str()
        .expect("the trial's entitlement")
        .to_owned()
}

/// Past the trial's reminder and end dates: what the outbox still holds
/// for the reader, and (after a later email has arrived, which the worker
/// sends after anything due earlier) what reached the inbox.
async fn after_the_trial_would_have_ended(
    app: &TestApp,
    email: &str,
) -> (Vec<String>, Vec<String>) {
    app.clock
        .advance(Duration::days(app.settings.trials.length_days + 1));
    let reset = app
        .post(
            &app.api,
            "/api/v1/password-resets",
            json!({ "email": email }),
        )
        .await;
    assert!(reset.status().is_success(), "{}", reset.status());
    app.mailbox.with_subject(email, "password").await;
    let queued = app.outbox(email).into_iter().map(|m| m.template).collect();
    let received = app.mailbox.to(email).iter().map(|m| m.subject()).collect();
    (queued, received)
}

#[tokio::test]
async fn a_trial_revoked_through_access_gets_no_reminder_and_no_end_email() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let email = "ada@analyticalengines.com";
    let reader = reader_named(&app, email, "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    let entitlement = approved_and_started(&app, &admin, &reader, &id, email).await;

    let revoked = app
        .post(
            &admin,
            &format!("/api/v1/admin/entitlements/{entitlement}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let me = app.get_json(&reader, "/api/v1/me").await;
    assert_eq!(me["access"]["level"], "teaser", "{me}");

    let (queued, received) = after_the_trial_would_have_ended(&app, email).await;
    for template in ["trial_reminder", "trial_ended"] {
        assert!(
            !queued.iter().any(|t| t == template),
            "{template} still queued: {queued:?}"
        );
    }
    assert!(
        !received
            .iter()
            .any(|s| s.contains("trial ends in") || s.contains("trial has ended")),
        "{received:?}"
    );
}

/// Approves or rejects `id` through the JSON API.
async fn decided_by_api(app: &TestApp, admin: &reqwest::Client, id: &str, verdict: &str) {
    let body = match verdict {
        "approve" => json!({}),
        _ => json!({ "reason": "Not a fit for a trial" }),
    };
    let response = app
        .post(admin, &format!("/api/v1/admin/trials/{id}/{verdict}"), body)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{verdict} {id}");
}

#[tokio::test]
async fn the_queue_filters_by_status_and_risk_flag_with_a_get_form() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_named(&app, "Ann Admin").await;
    let ada = reader_named(&app, "ada@analyticalengines.com", "Ada Approved").await;
    let ada_id = asks(&app, &ada, "Analytical Engines").await;
    app.clock.advance(Duration::hours(1));
    let bob = reader_named(&app, "bob@globex.com", "Bob Rejected").await;
    let bob_id = asks(&app, &bob, "Globex").await;
    app.clock.advance(Duration::hours(1));
    let grace = reader_named(&app, "grace@gmail.com", "Grace Waiting").await;
    asks(&app, &grace, "Navy Research").await;
    decided_by_api(&app, &admin, &ada_id, "approve").await;
    decided_by_api(&app, &admin, &bob_id, "reject").await;

    // The default: what waits for a decision.
    let html = queue_page(&app, &admin).await;
    assert!(
        html.contains("<form class=\"filters\" method=\"get\" action=\"/admin/trials\">"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"pending\" selected>"),
        "{html}"
    );
    assert!(html.contains("Grace Waiting"), "{html}");
    assert!(
        !html.contains("Ada Approved") && !html.contains("Bob Rejected"),
        "{html}"
    );

    let page = |query: &'static str| {
        let app = &app;
        let admin = &admin;
        async move {
            let (status, html) = app.page(admin, &format!("{QUEUE}?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {html}");
            html_unescape(&html)
        }
    };
    let approved = page("status=approved").await;
    assert!(
        approved.contains("Ada Approved") && !approved.contains("Grace Waiting"),
        "{approved}"
    );
    assert!(approved.contains("by Ann Admin"), "{approved}");
    assert!(
        approved.contains("<option value=\"approved\" selected>"),
        "{approved}"
    );
    assert!(
        !approved.contains(">Approve<span"),
        "a decided request has no decision buttons"
    );
    let rejected = page("status=rejected").await;
    assert!(
        rejected.contains("Bob Rejected") && !rejected.contains("Ada Approved"),
        "{rejected}"
    );

    // All: the waiting request first (though the newest), then oldest first.
    let all = page("status=all").await;
    let order: Vec<usize> = ["Grace Waiting", "Ada Approved", "Bob Rejected"]
        .iter()
        .map(|name| all.find(name).unwrap_or_else(|| panic!("{name} in {all}")))
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{order:?}");
    assert_eq!(
        all.matches("name=\"ids\"").count(),
        1,
        "only waiting requests can be ticked"
    );

    // One risk flag, across every status, and the words that explain it.
    let free_mail = page("status=all&flag=free_mail_domain").await;
    assert!(free_mail.contains("Grace Waiting"), "{free_mail}");
    assert!(
        !free_mail.contains("Ada Approved") && !free_mail.contains("Bob Rejected"),
        "{free_mail}"
    );
    assert!(
        free_mail.contains("Uses a free email address, not a company one"),
        "{free_mail}"
    );
    assert!(
        free_mail.contains("<option value=\"free_mail_domain\" selected>"),
        "{free_mail}"
    );
    assert!(
        free_mail.contains("href=\"/admin/trials\">Clear filters"),
        "{free_mail}"
    );
    let none = page("status=approved&flag=free_mail_domain").await;
    assert!(none.contains("No requests match these filters."), "{none}");
    // The forms of a filtered queue bring the admin back to it.
    assert!(
        free_mail.contains("<input type=\"hidden\" name=\"flag\" value=\"free_mail_domain\">"),
        "{free_mail}"
    );

    // Looking changed nothing; nonsense filters show the default.
    let odd = page("status=everything&flag=purple").await;
    assert!(
        odd.contains("Grace Waiting") && !odd.contains("Ada Approved"),
        "{odd}"
    );
    let counts = app
        .get_json(&admin, "/api/v1/admin/trials?status=all")
        .await["counts"]
        .clone();
    assert_eq!(
        counts,
        json!({ "pending": 1, "approved": 1, "rejected": 1, "overdue": 0 })
    );
}

#[tokio::test]
async fn a_request_page_shows_the_applicant_their_other_requests_and_the_history() {
    let app = TestApp::spawn().await;
    let (ann, _) = admin_named(&app, "Ann Admin").await;
    let (bob, _) = admin_named(&app, "Bob Second").await;
    let email = "carol@initech.com";
    let reader = reader_named(&app, email, "Carol Reader").await;
    let first = asks(&app, &reader, "Initech").await;
    app.clock.advance(Duration::minutes(5));
    decided_by_api(&app, &ann, &first, "reject").await;
    app.clock.advance(Duration::hours(2));
    let second = asks(&app, &reader, "Initech").await;
    app.clock.advance(Duration::hours(3));

    let path = format!("{QUEUE}/{second}");
    let (status, html) = app.page(&ann, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let html = html_unescape(&html);
    for shown in [
        "<title>Carol Reader's trial request",
        "<h1>Carol Reader's trial request</h1>",
        "aria-current=\"page\">Trials</a>",
        "carol@initech.com",
        "Initech",
        "Patent attorney",
        "Following a case",
        "(3 hours ago)",
        "<dt>Account age</dt><dd>5 hours (registered",
        "<dt>Email verified</dt><dd>Yes, on",
        "An earlier request from this account was turned down",
        "Due in 45 hours",
        "status-tag--due",
        &format!("action=\"/admin/trials/{second}/approve\""),
        &format!("action=\"/admin/trials/{second}/reject\""),
        "<input type=\"hidden\" name=\"view\" value=\"detail\">",
        // The other request, with a link to it.
        &format!("<a href=\"/admin/trials/{first}\">"),
        "Turned down",
    ] {
        assert!(html.contains(shown), "{shown} missing from:\n{html}");
    }
    assert!(!html.contains("status-tag--overdue"), "{html}");

    // Approve with a note from this page, undo, let another admin approve,
    // then end the trial early: each step in the history, by name.
    app.clock.advance(Duration::minutes(1));
    let approved = app
        .submit(
            &ann,
            &path,
            &format!("{path}/approve"),
            &[("note", "Known firm"), ("view", "detail")],
        )
        .await;
    let (to, _) = follow(&app, &ann, approved).await;
    assert_eq!(to, path, "back to the request's page");
    app.clock.advance(Duration::minutes(1));
    let undone = app
        .submit(&ann, &path, &format!("{path}/undo"), &[("view", "detail")])
        .await;
    assert_eq!(location(&undone), path);
    app.clock.advance(Duration::minutes(1));
    decided_by_api(&app, &bob, &second, "approve").await;
    app.clock.advance(Duration::days(2));
    let ended = app
        .submit(
            &ann,
            &path,
            &format!("{path}/end"),
            &[("reason", "Shared the login with a competitor")],
        )
        .await;
    let (_, html) = follow(&app, &ann, ended).await;
    assert!(html.contains("You ended Carol Reader's trial."), "{html}");
    let steps: Vec<Vec<String>> = history_rows(&html)
        .into_iter()
        .map(|cells| cells.into_iter().skip(1).collect())
        .collect();
    assert_eq!(
        steps,
        [
            ["Carol Reader", "Asked for a trial", ""],
            ["Ann Admin", "Approved", "Known firm"],
            ["Ann Admin", "Undid the decision", ""],
            ["Bob Second", "Approved", ""],
            [
                "Ann Admin",
                "Ended the trial early",
                "Shared the login with a competitor"
            ],
        ]
    );
    assert!(html.contains("Ended early, at"), "{html}");
    assert!(
        !html.contains("End trial now"),
        "an ended trial cannot be ended again"
    );

    // Every step is in the audit trail too, with who took it.
    let (ann_id, bob_id) = (my_id(&app, &ann).await, my_id(&app, &bob).await);
    let trail = audit_of(&app, &second);
    let expected = [
        ("trial.approve", &ann_id),
        ("trial.undo", &ann_id),
        ("trial.approve", &bob_id),
        ("trial.end", &ann_id),
    ];
    assert_eq!(trail.len(), expected.len(), "{trail:?}");
    for ((action, actor), (want, by)) in trail.iter().zip(expected) {
        assert_eq!(
            (action.as_str(), actor.as_deref()),
            (want, Some(by.as_str()))
        );
    }
    assert_eq!(
        audit_of(&app, &first),
        [("trial.reject".to_owned(), Some(ann_id.clone()))]
    );

    // Unknown and malformed ids are not found; a reader may not look.
    let missing = format!("{QUEUE}/{}", uuid::Uuid::new_v4());
    assert_eq!(app.page(&ann, &missing).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.page(&ann, &format!("{QUEUE}/nonsense")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, html) = app.page(&reader, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("You cannot do that here") && !html.contains("Shared the login"),
        "{html}"
    );
}

#[tokio::test]
async fn bulk_decisions_on_the_queue_say_what_became_of_each_request() {
    let app = TestApp::spawn().await;
    let (ann, _) = admin_named(&app, "Ann Admin").await;
    let (bob, _) = admin_named(&app, "Bob Second").await;
    let mut ids = Vec::new();
    for (email, name, company) in [
        ("one@acme.com", "One Acme", "Acme"),
        ("two@initech.com", "Two Initech", "Initech"),
        ("three@globex.com", "Three Globex", "Globex"),
    ] {
        let reader = reader_named(&app, email, name).await;
        ids.push(asks(&app, &reader, company).await);
    }
    let html = queue_page(&app, &ann).await;
    for id in &ids {
        assert!(
            html.contains(&format!(
                "id=\"select-{id}\" name=\"ids\" value=\"{id}\" form=\"bulk\""
            )),
            "{html}"
        );
    }
    assert!(html.contains("<form id=\"bulk\""), "{html}");
    let token = form_token(&html);
    // Another admin approves one while Ann's page is open.
    let bob_decided = app.now();
    decided_by_api(&app, &bob, &ids[2], "approve").await;

    // Nothing ticked, or a rejection without a reason: asked again, with
    // what was ticked kept.
    let nothing = app
        .post_form(
            &ann,
            "/admin/trials/bulk",
            &token,
            &[("action", "approve"), ("status", "pending")],
        )
        .await;
    assert_eq!(nothing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = html_unescape(&nothing.text().await.expect("a page"));
    assert!(
        page.contains("href=\"#bulk-ids\">Select at least one request"),
        "{page}"
    );
    let unexplained = app
        .post_form(
            &ann,
            "/admin/trials/bulk",
            &token,
            &[("action", "reject"), ("ids", &ids[0]), ("reason", " ")],
        )
        .await;
    assert_eq!(unexplained.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = html_unescape(&unexplained.text().await.expect("a page"));
    assert!(page.contains("<title>Error: Trial requests"), "{page}");
    assert!(page.contains("href=\"#bulk-reason\""), "{page}");
    assert!(
        page.contains(&format!("value=\"{}\" form=\"bulk\" checked", ids[0])),
        "{page}"
    );
    assert!(
        app.get_json(&ann, "/api/v1/admin/trials").await["counts"]["pending"] == 2,
        "nothing was decided"
    );

    let all: Vec<(&str, &str)> = ids.iter().map(|id| ("ids", id.as_str())).collect();
    let mut fields = vec![("action", "approve"), ("status", "pending")];
    fields.extend(all);
    let approved = app
        .post_form(&ann, "/admin/trials/bulk", &token, &fields)
        .await;
    let (to, html) = follow(&app, &ann, approved).await;
    assert_eq!(to, QUEUE);
    assert!(html.contains("You approved 2 requests."), "{html}");
    let told = format!(
        "The request from Globex was already decided by Bob Second at {}: approved.",
        when(bob_decided)
    );
    assert!(html.contains(&told), "{told}\n{html}");
    assert!(
        html.contains("Nothing is waiting for a decision."),
        "{html}"
    );
    for (id, by) in [(&ids[0], "trial.approve"), (&ids[1], "trial.approve")] {
        assert_eq!(audit_of(&app, id).len(), 1, "{id}");
        assert_eq!(audit_of(&app, id)[0].0, by);
    }

    // The JSON twin calls the same service and reports the same way.
    let again = app
        .post(
            &ann,
            "/api/v1/admin/trials/bulk",
            json!({ "action": "reject", "reason": "No", "ids": [ids[0]] }),
        )
        .await;
    let results: Value = again.json().await.expect("json");
    assert_eq!(
        results["results"][0]["outcome"], "already_decided",
        "{results}"
    );
    let empty = app
        .post(
            &ann,
            "/api/v1/admin/trials/bulk",
            json!({ "action": "approve", "ids": [] }),
        )
        .await;
    crate::helpers::assert_problem(empty, StatusCode::UNPROCESSABLE_ENTITY, Some("ids")).await;
}

#[tokio::test]
async fn ending_a_trial_early_on_its_page_cuts_access_and_withdraws_its_emails() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_named(&app, "Ann Admin").await;
    let email = "ada@analyticalengines.com";
    let reader = reader_named(&app, email, "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    approved_and_started(&app, &admin, &reader, &id, email).await;
    let path = format!("{QUEUE}/{id}");
    let (_, html) = app.page(&admin, &path).await;
    let html = html_unescape(&html);
    assert!(html.contains("Running until"), "{html}");
    assert!(html.contains(&format!("action=\"{path}/end\"")), "{html}");
    assert!(html.contains(">End trial now</button>"), "{html}");
    assert!(!html.contains(">Undo<span"), "its undo period is over");

    let unexplained = app
        .submit(&admin, &path, &format!("{path}/end"), &[("reason", "")])
        .await;
    assert_eq!(unexplained.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = html_unescape(&unexplained.text().await.expect("a page"));
    assert!(
        page.contains("<title>Error: Ada Lovelace's trial request"),
        "{page}"
    );
    assert!(
        page.contains("href=\"#end-reason\">Say why the trial ends early"),
        "{page}"
    );
    assert!(page.contains("id=\"end-reason\" name=\"reason\""), "{page}");
    assert_eq!(
        app.get_json(&reader, "/api/v1/me").await["access"]["reason"],
        "trial"
    );

    let ended = app
        .submit(
            &admin,
            &path,
            &format!("{path}/end"),
            &[("reason", "Disposable company")],
        )
        .await;
    let (to, html) = follow(&app, &admin, ended).await;
    assert_eq!(to, path);
    assert!(
        html.contains("You ended Ada Lovelace's trial. They can no longer read articles in full"),
        "{html}"
    );
    assert!(
        html.contains("status-tag--rejected\">Ended early"),
        "{html}"
    );
    let me = app.get_json(&reader, "/api/v1/me").await;
    assert_eq!(
        (
            me["access"]["level"].as_str(),
            me["access"]["reason"].as_str()
        ),
        (Some("teaser"), Some("trial_ended")),
        "{me}"
    );

    let (queued, received) = after_the_trial_would_have_ended(&app, email).await;
    for template in ["trial_reminder", "trial_ended"] {
        assert!(
            !queued.iter().any(|t| t == template),
            "{template} still queued: {queued:?}"
        );
    }
    assert!(
        !received
            .iter()
            .any(|s| s.contains("trial ends in") || s.contains("trial has ended")),
        "{received:?}"
    );
    // The reader was told the trial started; nothing else about it.
    assert_eq!(
        received.iter().filter(|s| s.contains("trial")).count(),
        2,
        "received and started only: {received:?}"
    );
    let trail: Vec<String> = audit_of(&app, &id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(trail, ["trial.approve", "trial.end"]);
}

#[tokio::test]
async fn the_json_twin_ends_a_running_trial_and_refuses_anything_else() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_named(&app, "Ann Admin").await;
    let email = "ada@analyticalengines.com";
    let reader = reader_named(&app, email, "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    let end = format!("/api/v1/admin/trials/{id}/end");

    let pending = app
        .post(&admin, &end, json!({ "reason": "Too early" }))
        .await;
    let problem = crate::helpers::assert_problem(pending, StatusCode::CONFLICT, None).await;
    assert_eq!(problem["reason"], "trial_not_running");
    let forbidden = app.post(&reader, &end, json!({ "reason": "Mine" })).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    decided_by_api(&app, &admin, &id, "approve").await;
    let second = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{id}/approve"),
            json!({}),
        )
        .await;
    let problem = crate::helpers::assert_problem(second, StatusCode::CONFLICT, None).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("approved by Ann Admin at"),
        "{problem}"
    );
    let unexplained = app.post(&admin, &end, json!({})).await;
    crate::helpers::assert_problem(
        unexplained,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("reason"),
    )
    .await;

    // Ended inside the undo period: the approval email had not left, and
    // never will; nor will anything after it.
    let ended = app
        .post(&admin, &end, json!({ "reason": "Approved by mistake" }))
        .await;
    assert_eq!(ended.status(), StatusCode::OK);
    let body: Value = ended.json().await.expect("json");
    assert_eq!(body["request"]["status"], "approved", "{body}");
    assert_eq!(body["access"]["state"], "ended", "{body}");
    assert_eq!(
        body["access"]["ends_at"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        Some(Some(app.now())),
        "{body}"
    );
    assert_eq!(
        app.get_json(&reader, "/api/v1/me").await["access"]["level"],
        "teaser"
    );
    let again = app.post(&admin, &end, json!({ "reason": "Twice" })).await;
    crate::helpers::assert_problem(again, StatusCode::CONFLICT, None).await;
    // And an ended trial's approval stands: it cannot be undone.
    let undo = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{id}/undo"),
            json!({}),
        )
        .await;
    let problem = crate::helpers::assert_problem(undo, StatusCode::CONFLICT, None).await;
    assert_eq!(problem["reason"], "trial_not_running");

    let (queued, received) = after_the_trial_would_have_ended(&app, email).await;
    assert!(
        !queued
            .iter()
            .any(|t| t.starts_with("trial_") && t != "trial_received"),
        "{queued:?}"
    );
    assert!(
        !received.iter().any(|s| s.contains("trial has started")),
        "{received:?}"
    );
    let history = app
        .get_json(&admin, &format!("/api/v1/admin/trials/{id}"))
        .await;
    let actions: Vec<&str> = history["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|d| d["action"].as_str())
        .collect();
    assert_eq!(actions, ["approve", "end"]);
}

#[tokio::test]
async fn the_undo_notice_counts_down_on_the_server() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_named(&app, "Ann Admin").await;
    let reader = reader_named(&app, "ada@analyticalengines.com", "Ada Lovelace").await;
    let id = asks(&app, &reader, "Analytical Engines").await;
    let decided_at = app.now();
    let approved = app
        .submit(&admin, QUEUE, &format!("{QUEUE}/{id}/approve"), &[])
        .await;
    let (_, html) = follow(&app, &admin, approved).await;
    let until = (decided_at + Duration::minutes(app.settings.trials.undo_minutes))
        .format("%H:%M UTC")
        .to_string();
    let notice = format!("You can undo the approval until {until} (10 minutes left).");
    assert!(html.contains(&notice), "{notice}\n{html}");

    app.clock
        .advance(Duration::minutes(4) + Duration::seconds(30));
    let path = format!("{QUEUE}/{id}");
    let (_, html) = app.page(&admin, &path).await;
    let html = html_unescape(&html);
    assert!(
        html.contains(&format!("until {until} (6 minutes left)")),
        "{html}"
    );
    let undone = app
        .submit(
            &admin,
            &path,
            &format!("{path}/undo"),
            &[("view", "detail")],
        )
        .await;
    let (to, html) = follow(&app, &admin, undone).await;
    assert_eq!(to, path);
    assert!(
        html.contains("is undone: it is waiting in the queue again"),
        "{html}"
    );
    assert!(html.contains(">Approve<span"), "{html}");
    let trail: Vec<String> = audit_of(&app, &id).into_iter().map(|(a, _)| a).collect();
    assert_eq!(trail, ["trial.approve", "trial.undo"]);
}
