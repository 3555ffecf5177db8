use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{article, assert_problem, TestApp};

/// A published article whose last paragraph only full readers see.
async fn paywalled(app: &TestApp) -> String {
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let body = "Opening paragraph for everyone.\n\nMiddle paragraph.\n\nSubscribers-only ending.";
    let draft = app
        .draft(&editor, article("Trial test story", "patents", &[], body))
        .await;
    app.publish(&editor, &draft).await;
    "/api/v1/articles/trial-test-story".to_owned()
}

async fn access(app: &TestApp, client: &reqwest::Client, path: &str) -> (String, String) {
    let read = app.get_json(client, path).await;
    (
        read["access"].as_str().unwrap_or_default().to_owned(),
        read["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn queue(app: &TestApp, admin: &reqwest::Client, query: &str) -> Value {
    app.get_json(admin, &format!("/api/v1/admin/trials{query}"))
        .await
}

#[tokio::test]
async fn a_trial_from_request_to_its_end() {
    let app = TestApp::spawn().await;
    let story = paywalled(&app).await;
    let admin = app.admin().await;
    let reader = TestApp::browser();
    let email = "ada@analyticalengines.com";
    app.verified_reader(&reader, email).await;

    let requested = app.request_trial(&reader, "Analytical Engines").await;
    assert_eq!(requested.status(), StatusCode::CREATED);
    let requested: Value = requested.json().await.expect("json");
    assert_eq!(requested["status"], "pending");
    let due_by: chrono::DateTime<chrono::Utc> = requested["decision_due_by"]
        .as_str()
        .expect("due")
        .parse()
        .expect("time");
    assert_eq!(due_by, app.now() + Duration::hours(48));
    let received = app.mailbox.nth(email, 2).await;
    assert!(
        received.subject().contains("trial request"),
        "{}",
        received.subject()
    );
    assert_eq!(
        app.get_json(&reader, "/api/v1/trials/mine").await["status"],
        "pending"
    );

    let pending = queue(&app, &admin, "").await;
    assert_eq!(pending["counts"]["pending"], 1);
    let item = &pending["requests"][0];
    assert_eq!(item["applicant"]["email"], email);
    assert_eq!(item["decision_due_by"], requested["decision_due_by"]);
    assert_eq!(item["overdue"], false);
    assert_eq!(item["flags"], json!(["new_account"]));
    assert_eq!(
        access(&app, &reader, &story).await,
        ("teaser".into(), "no_subscription".into())
    );

    let id = requested["id"].as_str().expect("id");
    let approved = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{id}/approve"),
            json!({ "note": "Known firm" }),
        )
        .await;
    assert_eq!(approved.status(), StatusCode::OK);
    assert_eq!(
        access(&app, &reader, &story).await,
        ("full".into(), "trial".into())
    );

    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let started = app.mailbox.nth(email, 3).await;
    assert!(
        started.subject().contains("trial has started"),
        "{}",
        started.subject()
    );

    app.clock
        .advance(Duration::days(11) - Duration::minutes(app.settings.trials.undo_minutes));
    let reminder = app.mailbox.nth(email, 4).await;
    assert!(
        reminder.subject().contains("ends in 3 days"),
        "{}",
        reminder.subject()
    );
    assert_eq!(
        access(&app, &reader, &story).await,
        ("full".into(), "trial".into())
    );

    app.clock.advance(Duration::days(3));
    let ended = app.mailbox.nth(email, 5).await;
    assert!(
        ended.subject().contains("trial has ended"),
        "{}",
        ended.subject()
    );
    assert!(ended.text().contains("/company-access"));
    assert_eq!(
        access(&app, &reader, &story).await,
        ("teaser".into(), "trial_ended".into())
    );

    let again = app.request_trial(&reader, "Analytical Engines").await;
    let problem = assert_problem(again, StatusCode::CONFLICT, None).await;
    assert_eq!(problem["reason"], "trial_already_used");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        app.mailbox.to(email).len(),
        5,
        "each lifecycle email exactly once"
    );
}

#[tokio::test]
async fn a_rejected_request_is_explained_and_may_be_made_again() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let reader = TestApp::browser();
    let email = "bob@globex.com";
    app.verified_reader(&reader, email).await;
    let trial: Value = app
        .request_trial(&reader, "Globex")
        .await
        .json()
        .await
        .expect("json");
    let path = format!(
        "/api/v1/admin/trials/{}/reject",
        trial["id"].as_str().expect("id")
    );

    let unexplained = app.post(&admin, &path, json!({ "reason": "  " })).await;
    assert_problem(
        unexplained,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("reason"),
    )
    .await;
    let rejected = app
        .post(
            &admin,
            &path,
            json!({ "reason": "We could not confirm your role at Globex." }),
        )
        .await;
    assert_eq!(rejected.status(), StatusCode::OK);
    assert_problem(
        app.post(&admin, &path, json!({ "reason": "again" })).await,
        StatusCode::CONFLICT,
        None,
    )
    .await;

    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let mail = app
        .mailbox
        .with_subject(email, "Your Masthead trial request")
        .await;
    let text = mail.text();
    assert!(
        text.contains("We could not confirm your role at Globex."),
        "{text}"
    );
    assert!(
        text.contains("/newsletter") && text.contains("/contact-sales"),
        "{text}"
    );

    let rejected = queue(&app, &admin, "?status=rejected").await;
    assert_eq!(
        rejected["requests"][0]["decision_note"],
        "We could not confirm your role at Globex."
    );
    assert_eq!(rejected["counts"]["rejected"], 1);

    let again = app.request_trial(&reader, "Globex").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let pending = queue(&app, &admin, "").await;
    let flags = pending["requests"][0]["flags"]
        .as_array()
        .expect("flags")
        .clone();
    assert!(flags.contains(&json!("previously_rejected")), "{flags:?}");
}

#[tokio::test]
async fn each_rule_has_its_own_answer() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let anonymous = TestApp::browser();
    assert_problem(
        app.request_trial(&anonymous, "Acme").await,
        StatusCode::UNAUTHORIZED,
        None,
    )
    .await;

    let unverified = TestApp::browser();
    app.register("unverified@acme.com", crate::helpers::PASSWORD)
        .await;
    app.login_with(&unverified, "unverified@acme.com", crate::helpers::PASSWORD)
        .await;
    assert_problem(
        app.request_trial(&unverified, "Acme").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;

    let reader = TestApp::browser();
    app.verified_reader(&reader, "keen@acme.com").await;
    let invalid = app
        .post(
            &reader,
            "/api/v1/trials",
            json!({ "company": "", "job_title": "x" }),
        )
        .await;
    assert_problem(invalid, StatusCode::UNPROCESSABLE_ENTITY, Some("company")).await;
    assert_eq!(
        app.request_trial(&reader, "Acme").await.status(),
        StatusCode::CREATED
    );
    let twice = assert_problem(
        app.request_trial(&reader, "Acme").await,
        StatusCode::CONFLICT,
        None,
    )
    .await;
    assert_eq!(twice["reason"], "trial_pending");

    let subscriber = TestApp::browser();
    app.verified_reader(&subscriber, "paid@acme.com").await;
    let id = app.get_json(&subscriber, "/api/v1/me").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let granted = app
        .post(
            &admin,
            &format!("/api/v1/admin/accounts/{id}/grants"),
            json!({}),
        )
        .await;
    assert_eq!(granted.status(), StatusCode::CREATED);
    let has_access = assert_problem(
        app.request_trial(&subscriber, "Acme").await,
        StatusCode::CONFLICT,
        None,
    )
    .await;
    assert_eq!(has_access["reason"], "already_has_access");
    assert!(has_access["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("subscription"));

    let trial_id = app.get_json(&reader, "/api/v1/trials/mine").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (method, path) in [
        ("GET", "/api/v1/admin/trials".to_owned()),
        ("GET", format!("/api/v1/admin/trials/{trial_id}")),
        ("POST", format!("/api/v1/admin/trials/{trial_id}/approve")),
        ("POST", format!("/api/v1/admin/trials/{trial_id}/reject")),
        ("POST", format!("/api/v1/admin/trials/{trial_id}/undo")),
        ("POST", "/api/v1/admin/trials/bulk".to_owned()),
    ] {
        let body = json!({ "reason": "x", "action": "approve", "ids": [trial_id] });
        let request = |client: &reqwest::Client| match method {
            "GET" => client.get(app.url(&path)),
            _ => client.post(app.url(&path)).json(&body),
        };
        assert_problem(
            request(&reader).send().await.expect("sent"),
            StatusCode::FORBIDDEN,
            None,
        )
        .await;
        assert_problem(
            request(&anonymous).send().await.expect("sent"),
            StatusCode::UNAUTHORIZED,
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn two_admins_deciding_at_once_make_one_decision_and_one_email() {
    let app = TestApp::spawn().await;
    let first_admin = app.admin().await;
    let second_admin = app.admin().await;
    let reader = TestApp::browser();
    let email = "race@initech.com";
    app.verified_reader(&reader, email).await;
    let trial: Value = app
        .request_trial(&reader, "Initech")
        .await
        .json()
        .await
        .expect("json");
    let path = format!(
        "/api/v1/admin/trials/{}/approve",
        trial["id"].as_str().expect("id")
    );

    let (a, b) = tokio::join!(
        app.post(&first_admin, &path, json!({})),
        app.post(&second_admin, &path, json!({})),
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);

    let me = app.get_json(&reader, "/api/v1/me").await;
    assert_eq!(
        me["entitlements"].as_array().expect("entitlements").len(),
        1
    );
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    app.mailbox.nth(email, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.mailbox.to(email).len(),
        3,
        "verification, received, approved: once each"
    );
}

#[tokio::test]
async fn a_decision_can_be_undone_for_a_short_while_and_its_email_never_leaves() {
    let app = TestApp::spawn().await;
    let story = paywalled(&app).await;
    let admin = app.admin().await;
    let reader = TestApp::browser();
    let email = "oops@umbrella.com";
    app.verified_reader(&reader, email).await;
    let trial: Value = app
        .request_trial(&reader, "Umbrella")
        .await
        .json()
        .await
        .expect("json");
    let id = trial["id"].as_str().expect("id");
    app.mailbox.nth(email, 2).await;

    app.post(
        &admin,
        &format!("/api/v1/admin/trials/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(access(&app, &reader, &story).await.0, "full");
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes - 1));
    let undone = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{id}/undo"),
            json!({}),
        )
        .await;
    assert_eq!(undone.status(), StatusCode::OK);
    assert_eq!(
        app.get_json(&reader, "/api/v1/trials/mine").await["status"],
        "pending"
    );
    assert_eq!(access(&app, &reader, &story).await.0, "teaser");

    app.clock.advance(Duration::days(15));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.mailbox.to(email).len(),
        2,
        "no approval, reminder or end email"
    );

    app.post(
        &admin,
        &format!("/api/v1/admin/trials/{id}/reject"),
        json!({ "reason": "Duplicate" }),
    )
    .await;
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    let late = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{id}/undo"),
            json!({}),
        )
        .await;
    let problem = assert_problem(late, StatusCode::CONFLICT, None).await;
    assert_eq!(problem["reason"], "undo_expired");

    let history = app
        .get_json(&admin, &format!("/api/v1/admin/trials/{id}"))
        .await;
    let actions: Vec<&str> = history["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|d| d["action"].as_str())
        .collect();
    assert_eq!(actions, ["approve", "undo", "reject"]);
}

#[tokio::test]
async fn requests_turn_overdue_after_the_promised_48_hours() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "wait@acme.com").await;
    app.request_trial(&reader, "Acme").await;

    app.clock.advance(Duration::hours(48));
    let queue_now = queue(&app, &admin, "").await;
    assert_eq!(queue_now["requests"][0]["overdue"], false);
    assert_eq!(queue_now["counts"]["overdue"], 0);
    assert_eq!(queue_now["requests"][0]["age_hours"], 48.0);

    app.clock.advance(Duration::seconds(1));
    let queue_later = queue(&app, &admin, "").await;
    assert_eq!(queue_later["requests"][0]["overdue"], true);
    assert_eq!(queue_later["counts"]["overdue"], 1);
}

#[tokio::test]
async fn risk_flags_describe_each_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut flags_by_email = Vec::new();
    for (email, company, wait) in [
        ("first@acme.com", "Acme", true),
        ("private@gmail.com", "Acme", true),
        ("throwaway@mailinator.com", "Throwaway", true),
        ("someone@globex.com", "Acme", true),
        ("quick@initech.com", "Initech", false),
    ] {
        let reader = TestApp::browser();
        app.verified_reader(&reader, email).await;
        if wait {
            app.clock
                .advance(Duration::minutes(app.settings.trials.new_account_minutes));
        } else {
            app.clock.advance(Duration::seconds(1));
        }
        assert_eq!(
            app.request_trial(&reader, company).await.status(),
            StatusCode::CREATED
        );
        flags_by_email.push(email);
    }
    let listed = queue(&app, &admin, "").await;
    let flags = |email: &str| -> Vec<String> {
        let item = listed["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .find(|r| r["applicant"]["email"] == email)
            .expect("listed");
        item["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(flags("first@acme.com"), Vec::<String>::new());
    assert_eq!(
        flags("private@gmail.com"),
        [
            "free_mail_domain",
            "same_company_recently",
            "same_ip_recently"
        ]
    );
    assert_eq!(
        flags("throwaway@mailinator.com"),
        ["disposable_domain", "same_ip_recently"]
    );
    assert_eq!(
        flags("someone@globex.com"),
        [
            "company_domain_mismatch",
            "same_company_recently",
            "same_ip_recently"
        ]
    );
    assert_eq!(
        flags("quick@initech.com"),
        ["new_account", "same_ip_recently"]
    );

    let disposable = queue(&app, &admin, "?flag=disposable_domain").await;
    assert_eq!(
        disposable["requests"].as_array().expect("requests").len(),
        1
    );
    assert_eq!(
        disposable["requests"][0]["applicant"]["email"],
        "throwaway@mailinator.com"
    );
    let oldest_first: Vec<&str> = listed["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["applicant"]["email"].as_str())
        .collect();
    assert_eq!(oldest_first, flags_by_email);
}

#[tokio::test]
async fn bulk_decisions_report_each_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for email in ["one@acme.com", "two@acme.com", "three@acme.com"] {
        let reader = TestApp::browser();
        app.verified_reader(&reader, email).await;
        let trial: Value = app
            .request_trial(&reader, "Acme")
            .await
            .json()
            .await
            .expect("json");
        ids.push(trial["id"].as_str().expect("id").to_owned());
    }
    app.post(
        &admin,
        &format!("/api/v1/admin/trials/{}/approve", ids[2]),
        json!({}),
    )
    .await;
    let bogus = uuid::Uuid::new_v4().to_string();
    let response = app
        .post(&admin, "/api/v1/admin/trials/bulk", json!({ "action": "reject", "reason": "Not eligible", "ids": [ids[0], ids[1], ids[2], bogus] }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let results: Value = response.json().await.expect("json");
    let outcomes: Vec<&str> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["decided", "decided", "already_decided", "not_found"]
    );
    let counts = queue(&app, &admin, "?status=all").await["counts"].clone();
    assert_eq!(
        counts,
        json!({ "pending": 0, "approved": 1, "rejected": 2, "overdue": 0 })
    );
}

#[tokio::test]
async fn admins_get_a_morning_summary_naming_overdue_requests() {
    let app = TestApp::spawn_with(|s| {
        s.trials.summary_at = masthead::platform::config::TimeOfDay(chrono::NaiveTime::MIN)
    })
    .await;
    let admin_email = "chief@example.com";
    let admin = TestApp::browser();
    app.privileged(&admin, admin_email, "admin").await;
    let reader = TestApp::browser();
    app.verified_reader(&reader, "late@acme.com").await;
    app.request_trial(&reader, "Acme").await;

    app.clock.advance(Duration::hours(49));
    let summary = app.mailbox.nth(admin_email, 1).await;
    assert!(
        summary
            .subject()
            .contains("1 waiting, 1 past the 48-hour promise"),
        "{}",
        summary.subject()
    );
    let text = summary.text();
    assert!(
        text.contains("Ada Lovelace (Acme), asked 49 hours ago"),
        "{text}"
    );

    let metrics = app
        .get(&TestApp::browser(), "/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("masthead_trial_requests_pending 1"),
        "{metrics}"
    );
    let id = app.get_json(&reader, "/api/v1/trials/mine").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.post(
        &admin,
        &format!("/api/v1/admin/trials/{id}/approve"),
        json!({}),
    )
    .await;
    let metrics = app
        .get(&TestApp::browser(), "/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("masthead_trial_requests_pending 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("masthead_trial_decision_hours_bucket{le=\"48\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("masthead_trial_decision_hours_bucket{le=\"72\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("masthead_trial_decision_hours_count 1"),
        "{metrics}"
    );
}
