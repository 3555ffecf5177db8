//! Sales inquiries: the public form and endpoint, the two emails, the
//! acknowledgement limit, and the admins' list.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::helpers::{assert_problem, form_token, html_unescape, location, TestApp, PASSWORD};

const SALES: &str = "sales@masthead.example";

fn inquiry(email: &str, company: &str, message: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "email": email,
        "company": company,
        "seats": 25,
        "message": message,
    })
}

async fn patch(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client
        .patch(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

async fn send(app: &TestApp, body: Value) -> reqwest::Response {
    app.post(&app.api, "/api/v1/inquiries", body).await
}

/// The inquiries stored, as an admin lists them.
async fn listed(app: &TestApp, admin: &reqwest::Client, query: &str) -> Vec<Value> {
    let list = app
        .get_json(admin, &format!("/api/v1/admin/inquiries{query}"))
        .await;
    list["inquiries"].as_array().expect("a list").clone()
}

fn templates_to(app: &TestApp, email: &str) -> Vec<String> {
    app.outbox(email).into_iter().map(|m| m.template).collect()
}

#[tokio::test]
async fn an_inquiry_with_bad_fields_is_refused_naming_each_one() {
    let app = TestApp::spawn().await;

    let body = assert_problem(
        send(&app, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    )
    .await;
    let named: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in ["name", "email", "company", "seats"] {
        assert!(named.contains(&field), "{field} not named in {body}");
    }
    assert!(!named.contains(&"message"), "the message is optional");

    let too_long = "x".repeat(5001);
    let cases = [
        ("seats", json!(0)),
        ("seats", json!(-3)),
        ("seats", json!(3.5)),
        ("seats", json!("many")),
        ("seats", json!([5])),
        ("seats", json!(100_001)),
        ("email", json!("not-an-address")),
        ("name", json!("a".repeat(201))),
        ("company", json!("   ")),
        ("message", json!(too_long)),
    ];
    for (field, value) in cases {
        let mut body = inquiry("ada@example.com", "Analytical Engines", "Hello");
        body[field] = value.clone();
        let problem = assert_problem(
            send(&app, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(field),
        )
        .await;
        assert_eq!(
            problem["errors"].as_array().expect("errors").len(),
            1,
            "{field} = {value}: {problem}"
        );
    }
    assert!(
        app.outbox(SALES).is_empty(),
        "a refused inquiry was sent on"
    );
    assert!(app.outbox("ada@example.com").is_empty());
}

#[tokio::test]
async fn an_inquiry_is_stored_acknowledged_and_sent_to_sales() {
    let app = TestApp::spawn().await;
    let message = "We are 25 lawyers.\nCall me on 020 7946 0000 <b>today</b> & visit evil.example";

    let response = send(
        &app,
        inquiry("Ada@Example.com", "Analytical <Engines>", message),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.expect("json");

    // Sales gets everything, as plain text, escaped in the HTML part.
    let notice = app.mailbox.with_subject(SALES, "Sales inquiry").await;
    assert_eq!(
        notice.subject(),
        "Sales inquiry: Analytical <Engines>, 25 seats"
    );
    let text = notice.text().replace("\r\n", "\n");
    for part in [
        "Ada Lovelace",
        "ada@example.com",
        "Analytical <Engines>",
        "25",
        message,
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    let html = notice.html();
    assert!(
        html.contains("&lt;b&gt;today&lt;&#x2f;b&gt; &amp; visit"),
        "{html}"
    );
    assert!(
        !html.contains("<b>today</b>"),
        "the sender's text was not escaped"
    );
    assert!(html_unescape(&html).contains("/admin/inquiries"));

    // The sender hears back, without a word of what they typed.
    let ack = app
        .mailbox
        .with_subject("ada@example.com", "subscription inquiry")
        .await;
    let (text, html) = (ack.text(), html_unescape(&ack.html()));
    assert!(text.contains("within one working day"), "{text}");
    assert!(text.contains("25 people"), "{text}");
    for typed in ["lawyers", "020 7946", "evil.example", "Lovelace", "Engines"] {
        assert!(
            !text.contains(typed) && !html.contains(typed),
            "the acknowledgement repeats {typed:?}:\n{text}"
        );
    }

    // Stored, waiting to be handled.
    let admin = app.admin().await;
    let stored = listed(&app, &admin, "").await;
    assert_eq!(stored.len(), 1);
    let one = &stored[0];
    assert_eq!(one["name"], "Ada Lovelace");
    assert_eq!(one["email"], "ada@example.com");
    assert_eq!(one["company"], "Analytical <Engines>");
    assert_eq!(one["seats"], 25);
    assert_eq!(one["message"], message);
    assert_eq!(one["handled"], false);
    assert_eq!(one["acknowledged"], true);

    // Any other address gets the very same answer.
    app.clock.advance(Duration::minutes(1));
    let other = send(&app, inquiry("bob@globex.com", "Globex", "")).await;
    assert_eq!(other.status(), StatusCode::ACCEPTED);
    assert_eq!(other.json::<Value>().await.expect("json"), answer);
    app.mailbox.wait_for("bob@globex.com", 1).await;
    let stored = listed(&app, &admin, "").await;
    assert_eq!(stored[0]["message"], Value::Null, "a blank message is none");
}

#[tokio::test]
async fn an_address_gets_one_acknowledgement_an_hour_and_sales_hears_of_every_inquiry() {
    let app = TestApp::spawn().await;
    let sender = "ada@example.com";

    for (n, address) in [sender, "ADA@example.com"].into_iter().enumerate() {
        let response = send(&app, inquiry(address, &format!("Firm {n}"), "Hi")).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        app.clock.advance(Duration::minutes(20));
    }
    app.mailbox.wait_for(SALES, 2).await;
    app.mailbox.wait_for(sender, 1).await;
    assert_eq!(
        templates_to(&app, sender),
        ["inquiry_received"],
        "a second acknowledgement within the hour"
    );
    assert_eq!(
        templates_to(&app, SALES),
        ["inquiry_sales", "inquiry_sales"]
    );

    // An hour after the first acknowledgement, the next inquiry gets one.
    app.clock.advance(Duration::minutes(21));
    assert_eq!(
        send(&app, inquiry(sender, "Firm 2", "Hi")).await.status(),
        StatusCode::ACCEPTED
    );
    app.mailbox.wait_for(SALES, 3).await;
    app.mailbox.wait_for(sender, 2).await;
    assert_eq!(
        templates_to(&app, sender),
        ["inquiry_received", "inquiry_received"]
    );

    let admin = app.admin().await;
    let acknowledged: Vec<bool> = listed(&app, &admin, "")
        .await
        .iter()
        .map(|i| i["acknowledged"].as_bool().expect("a flag"))
        .collect();
    assert_eq!(acknowledged, [true, false, true], "newest first");
}

#[tokio::test]
async fn the_contact_sales_form_shows_errors_inline_keeps_input_and_redirects_when_sent() {
    let app = TestApp::spawn().await;
    let browser = TestApp::browser();

    let (status, html) = app.page(&browser, "/contact-sales").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<form") && html.contains("Send inquiry"));
    assert!(html.contains("mailto:sales@masthead.example"));

    let fields = [
        ("name", "Ada Lovelace"),
        ("email", "not an address"),
        ("company", "Analytical Engines"),
        ("seats", "lots"),
        ("message", "Line one\nLine <two>"),
    ];
    let response = app
        .submit(&browser, "/contact-sales", "/contact-sales", &fields)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("a page");
    assert!(html.contains("<title>Error: "), "{html}");
    assert!(html.contains("There is a problem"));
    assert!(html.contains("href=\"#email\"") && html.contains("href=\"#seats\""));
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains("value=\"Ada Lovelace\""));
    assert!(html.contains("value=\"Analytical Engines\""));
    assert!(html.contains("value=\"lots\""));
    assert!(
        html.contains("Line one\nLine &lt;two&gt;</textarea>"),
        "{html}"
    );
    assert!(app.outbox(SALES).is_empty());

    // Put right, it goes through, and a reload sends nothing again.
    let token = form_token(&html);
    let fields = [
        ("name", "Ada Lovelace"),
        ("email", "ada@example.com"),
        ("company", "Analytical Engines"),
        ("seats", "12"),
        ("message", "Line one\nLine <two>"),
    ];
    let response = app
        .post_form(&browser, "/contact-sales", &token, &fields)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/contact-sales/thanks");
    let (status, html) = app.page(&browser, "/contact-sales/thanks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("will answer within one working day"),
        "{html}"
    );
    assert!(!html.contains("<form class=\"stacked\""));

    let notice = app.mailbox.with_subject(SALES, "Sales inquiry").await;
    assert!(notice
        .text()
        .replace("\r\n", "\n")
        .contains("Line one\nLine <two>"));
    app.mailbox.wait_for("ada@example.com", 1).await;
    let admin = app.admin().await;
    let stored = listed(&app, &admin, "").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["seats"], 12);
}

#[tokio::test]
async fn admins_list_inquiries_and_mark_them_handled_with_a_note_which_is_audited() {
    let app = TestApp::spawn().await;
    for company in ["Older Firm", "Newer Firm"] {
        let email = format!("buyer@{}.com", company.replace(' ', "").to_lowercase());
        assert_eq!(
            send(&app, inquiry(&email, company, "Prices?"))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
        app.clock.advance(Duration::minutes(5));
    }
    let admin = app.admin().await;
    let all = listed(&app, &admin, "").await;
    let companies: Vec<&str> = all.iter().filter_map(|i| i["company"].as_str()).collect();
    assert_eq!(companies, ["Newer Firm", "Older Firm"], "newest first");
    let older = all[1]["id"].as_str().expect("an id").to_owned();
    let newer = all[0]["id"].as_str().expect("an id").to_owned();

    // Through the API.
    let marked = patch(
        &app,
        &admin,
        &format!("/api/v1/admin/inquiries/{older}"),
        json!({ "handled": true, "note": "Sent prices for 25 seats." }),
    )
    .await;
    assert_eq!(marked.status(), StatusCode::OK);
    let marked: Value = marked.json().await.expect("json");
    assert_eq!(marked["handled"], true);
    assert_eq!(marked["note"], "Sent prices for 25 seats.");
    assert!(marked["handled_at"].is_string() && marked["handled_by"].is_string());
    let handled = listed(&app, &admin, "?handled=true").await;
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0]["id"], older.as_str());
    let waiting = listed(&app, &admin, "?handled=false").await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["id"], newer.as_str());
    // An empty value is not a boolean either; all inquiries is no `handled`.
    for value in ["maybe", ""] {
        assert_problem(
            app.get(&admin, &format!("/api/v1/admin/inquiries?handled={value}"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("handled"),
        )
        .await;
    }
    assert_problem(
        patch(
            &app,
            &admin,
            &format!("/api/v1/admin/inquiries/{newer}"),
            json!({ "handled": true, "note": "x".repeat(2001) }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("note"),
    )
    .await;
    assert_eq!(
        patch(
            &app,
            &admin,
            "/api/v1/admin/inquiries/00000000-0000-4000-8000-000000000000",
            json!({ "handled": true }),
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );

    // In the console: the waiting one, with its form.
    let (status, html) = app.page(&admin, "/admin/inquiries").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("href=\"/admin/inquiries\" aria-current=\"page\">Inquiries"));
    assert!(html.contains("Newer Firm") && !html.contains("Older Firm"));
    assert!(html.contains(&format!("action=\"/admin/inquiries/{newer}\"")));
    let token = form_token(&html);
    let too_long = "y".repeat(2001);
    let refused = app
        .post_form(
            &admin,
            &format!("/admin/inquiries/{newer}"),
            &token,
            &[("note", &too_long), ("handled", "true")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("a page");
    assert!(html.contains(&format!("href=\"#note-{newer}\"")), "{html}");
    assert!(html.contains(&too_long), "the note typed was not kept");
    let done = app
        .post_form(
            &admin,
            &format!("/admin/inquiries/{newer}"),
            &token,
            &[
                ("note", "Called back."),
                ("handled", "true"),
                ("show", "unhandled"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/admin/inquiries");
    let (_, html) = app.page(&admin, "/admin/inquiries").await;
    assert!(html.contains("Marked the inquiry from Newer Firm as handled."));
    assert!(html.contains("No inquiries here."));
    let (_, html) = app.page(&admin, "/admin/inquiries?show=handled").await;
    assert!(html.contains("Called back.") && html.contains("Sent prices for 25 seats."));
    assert!(html.contains("Grace Hopper"), "who handled it is named");

    // Reopened from the console: the box left unticked.
    let token = form_token(&html);
    let reopened = app
        .post_form(
            &admin,
            &format!("/admin/inquiries/{older}"),
            &token,
            &[("note", "Waiting for their budget."), ("show", "handled")],
        )
        .await;
    assert_eq!(location(&reopened), "/admin/inquiries?show=handled");
    let waiting = listed(&app, &admin, "?handled=false").await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["note"], "Waiting for their budget.");
    assert_eq!(waiting[0]["handled_at"], Value::Null);

    // Every change is in the audit trail.
    let (_, trail) = app.page(&admin, "/admin/audit").await;
    assert_eq!(trail.matches("inquiry.handle").count(), 2, "{trail}");
    assert_eq!(trail.matches("inquiry.reopen").count(), 1);
    assert!(trail.contains("Sent prices for 25 seats."));
    assert!(trail.contains(&format!("inquiry {older}")));
}

#[tokio::test]
async fn readers_and_strangers_cannot_see_or_handle_inquiries() {
    let app = TestApp::spawn().await;
    assert_eq!(
        send(&app, inquiry("ada@example.com", "Firm", ""))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let admin = app.admin().await;
    let id = listed(&app, &admin, "").await[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let reader = TestApp::browser();
    app.verified_reader(&reader, "reader@example.com").await;
    assert_problem(
        app.get(&reader, "/api/v1/admin/inquiries").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    assert_problem(
        patch(
            &app,
            &reader,
            &format!("/api/v1/admin/inquiries/{id}"),
            json!({ "handled": true }),
        )
        .await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    let (status, _) = app.page(&reader, "/admin/inquiries").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&TestApp::browser(), "/api/v1/admin/inquiries")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(listed(&app, &admin, "?handled=false").await.len(), 1);
}

#[tokio::test]
async fn in_a_browser_a_buyer_sends_an_inquiry_and_an_admin_marks_it_handled() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(
        "in_a_browser_a_buyer_sends_an_inquiry_and_an_admin_marks_it_handled",
        &app,
    )
    .await
    else {
        return;
    };
    browser.goto("/contact-sales").await;
    browser.axe("the contact-sales form").await;
    browser.fill_label("Your name", "Ada Lovelace").await;
    browser
        .fill_label("How many people need to read?", "0")
        .await;
    browser.click_button("Send inquiry").await;
    browser.wait_for_text("There is a problem").await;
    assert!(browser.title().await.starts_with("Error: "));
    browser.screenshot("contact-sales-errors").await;
    browser.axe("the contact-sales form with errors").await;

    browser
        .fill_label("Work email address", "ada@example.com")
        .await;
    browser
        .fill_label("Company or organisation", "Analytical Engines")
        .await;
    browser
        .fill_label("How many people need to read?", "25")
        .await;
    browser
        .fill_label(
            "Anything else we should know? (optional)",
            "Two offices.\nLondon and Paris.",
        )
        .await;
    browser.click_button("Send inquiry").await;
    browser.wait_for_text("We have your inquiry.").await;
    browser.screenshot("contact-sales-thanks").await;
    app.mailbox.with_subject(SALES, "Sales inquiry").await;

    let admin_email = "sales-admin@example.com";
    app.privileged(&TestApp::browser(), admin_email, "admin")
        .await;
    browser.goto("/login?next=/admin/inquiries").await;
    browser.fill_label("Email address", admin_email).await;
    browser.fill_label("Password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_text("1 inquiry waiting.").await;
    browser.screenshot("console-inquiries").await;
    browser.axe("the inquiries list").await;
    browser.fill_label("Note (optional)", "Sent prices.").await;
    browser.click_button("Mark handled").await;
    browser.wait_for_text("as handled.").await;
    browser.goto("/admin/inquiries?show=handled").await;
    browser.wait_for_text("Sent prices.").await;
    browser.screenshot("console-inquiries-handled").await;
}
