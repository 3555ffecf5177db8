//! Every link in every email lands on a page that exists. The real flows
//! send every kind of email; each link in each one (text part, HTML part,
//! List-Unsubscribe) is opened by a fresh browser, as a mail scanner or a
//! link preview would, and must show a page or ask for a login, and change
//! nothing. Every template in `email_templates/` must have been seen, so a
//! template added without a flow here fails this test by name. Each email
//! also passes the checks of `deliverability` (parts, headers, DKIM, VERP).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use masthead::newsletter::SubscriberStatus;
use masthead::platform::domain::EmailAddress;
use reqwest::StatusCode;
use serde_json::json;

use crate::deliverability;
use crate::helpers::{article, html_unescape, location, ReceivedEmail, TestApp, PASSWORD};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid instant")
}

/// Every http(s) address in a text or HTML body: `href` values and bare
/// words, with the HTML escaping undone.
fn urls_in(body: &str) -> Vec<String> {
    let body = html_unescape(body);
    let mut found: Vec<String> = body
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    let words = body.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''));
    for word in words {
        let start = word.find("http://").or_else(|| word.find("https://"));
        if let Some(start) = start {
            let url = word[start..].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
            found.push(url.to_owned());
        }
    }
    found
}

/// The names of the email templates on disk: `verify_email` for
/// `verify_email.html`; the layout is not a message.
fn templates_on_disk() -> BTreeSet<String> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("email_templates");
    std::fs::read_dir(&folder)
        .expect("the email_templates folder")
        .filter_map(|entry| {
            let name = entry.expect("an entry").file_name();
            let name = name.to_string_lossy();
            name.strip_suffix(".html").map(str::to_owned)
        })
        .filter(|name| name != "base")
        .collect()
}

/// A link's path with any secret in it shortened, for the report.
fn shape(path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = match path.strip_prefix("/unsubscribe/") {
        Some(_) => "/unsubscribe/{token}",
        None => path,
    };
    let query: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=…"),
            None => pair.to_owned(),
        })
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Opens the links of each email as it arrives and remembers what it saw.
struct LinkCheck {
    /// Messages of the mailbox already looked at.
    done: usize,
    /// Template → the link paths found in its emails.
    seen: BTreeMap<String, BTreeSet<String>>,
    /// A logged-in browser per recipient, for links behind a login.
    sessions: HashMap<String, reqwest::Client>,
    failures: Vec<String>,
}

impl LinkCheck {
    fn new() -> Self {
        Self {
            done: 0,
            seen: BTreeMap::new(),
            sessions: HashMap::new(),
            failures: Vec::new(),
        }
    }

    /// Which template an email was made from: the outbox row with its
    /// recipient and subject, or the digest (which has no outbox row).
    fn template_of(&self, app: &TestApp, mail: &ReceivedEmail) -> String {
        let to = mail.recipients.first().expect("a recipient");
        let subject = mail.subject();
        let templates: BTreeSet<String> = app
            .outbox(to)
            .into_iter()
            .filter(|row| row.subject == subject)
            .map(|row| row.template)
            .collect();
        match templates.len() {
            1 => templates.into_iter().next().expect("one"),
            0 => {
                let daily = format!("{} Daily, ", app.settings.mail.site_name);
                assert!(
                    subject.starts_with(&daily),
                    "{subject:?} to {to} is neither in the outbox nor a digest"
                );
                "digest".to_owned()
            }
            _ => panic!("{subject:?} to {to} matches several templates: {templates:?}"),
        }
    }

    /// Opens every link of every email that arrived since the last call.
    async fn check_new(&mut self, app: &TestApp) {
        let all = app.mailbox.all();
        let recipients: BTreeSet<String> = all.iter().flat_map(|m| m.recipients.clone()).collect();
        let outbox_before: usize = recipients.iter().map(|r| app.outbox(r).len()).sum();
        for mail in &all[self.done..] {
            self.check_one(app, mail).await;
        }
        self.done = all.len();
        let outbox_after: usize = recipients.iter().map(|r| app.outbox(r).len()).sum();
        assert_eq!(
            outbox_before, outbox_after,
            "opening the links of an email queued another email"
        );
    }

    async fn check_one(&mut self, app: &TestApp, mail: &ReceivedEmail) {
        let template = self.template_of(app, mail);
        for problem in deliverability::problems(app, mail, &template) {
            self.failures.push(format!("{template}: {problem}"));
        }
        let to = mail.recipients.first().expect("a recipient").clone();
        let public_url = app.settings.server.public_url.trim_end_matches('/');
        let mut urls = urls_in(&mail.text());
        urls.extend(urls_in(&mail.html()));
        if let Some(header) = mail.header("List-Unsubscribe") {
            urls.extend(
                header
                    .split(',')
                    .map(|part| part.trim().trim_start_matches('<').trim_end_matches('>'))
                    .filter(|url| url.starts_with("http"))
                    .map(str::to_owned),
            );
        }
        let paths: BTreeSet<String> = urls
            .iter()
            .filter_map(|url| url.strip_prefix(public_url))
            .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            .map(|rest| match rest {
                "" => "/".to_owned(),
                rest if rest.starts_with('?') => format!("/{rest}"),
                rest => rest.to_owned(),
            })
            .collect();
        if paths.is_empty() {
            self.failures
                .push(format!("{template}: no link to {public_url} at all"));
        }
        for path in &paths {
            let shown = match self.open(app, &to, path).await {
                Ok(Landing::Page) => shape(path),
                Ok(Landing::AfterLogin) => format!("{} (login)", shape(path)),
                Err(failure) => {
                    self.failures
                        .push(format!("{template}: GET {path} {failure}"));
                    shape(path)
                }
            };
            self.seen.entry(template.clone()).or_default().insert(shown);
        }
        self.seen.entry(template).or_default();
    }

    /// A fresh, anonymous browser opens `path`: a page, or the login form
    /// that comes back to it; behind the login, the recipient sees a page.
    async fn open(&self, app: &TestApp, recipient: &str, path: &str) -> Result<Landing, String> {
        let response = app.get(&TestApp::browser(), path).await;
        match response.status() {
            StatusCode::OK => is_html(response).map(|()| Landing::Page),
            StatusCode::SEE_OTHER => {
                let to = location(&response);
                let login = reqwest::Url::parse(&app.url(&to)).map_err(|e| e.to_string())?;
                let next = login
                    .query_pairs()
                    .find(|(key, _)| key == "next")
                    .map(|(_, value)| value.into_owned());
                if login.path() != "/login" || next.as_deref() != Some(path) {
                    return Err(format!("redirects to {to}, not to the login coming back"));
                }
                let session = self
                    .sessions
                    .get(recipient)
                    .ok_or_else(|| format!("needs a login, and {recipient} has no session here"))?;
                let response = app.get(session, path).await;
                match response.status() {
                    StatusCode::OK => is_html(response)
                        .map(|()| Landing::AfterLogin)
                        .map_err(|e| format!("logged in as {recipient}: {e}")),
                    other => Err(format!("logged in as {recipient}: answered {other}")),
                }
            }
            other => Err(format!("answered {other}")),
        }
    }

    fn log_in(&mut self, email: &str, session: reqwest::Client) {
        self.sessions.insert(email.to_owned(), session);
    }
}

/// Where a link took a fresh browser.
enum Landing {
    Page,
    /// The login form first, then (logged in) the page.
    AfterLogin,
}

fn is_html(response: reqwest::Response) -> Result<(), String> {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("text/html") {
        Ok(())
    } else {
        Err(format!("answered 200 with {content_type:?}, not HTML"))
    }
}

fn is_verified(app: &TestApp, email: &str) -> bool {
    let email = EmailAddress::parse(email).expect("valid");
    let mut conn = app.pool().get().expect("conn");
    masthead::accounts::store::find_by_email(&mut conn, &email)
        .expect("query")
        .expect("the account")
        .email_verified_at
        .is_some()
}

/// Registers `email`, opens the links of the verification email (which
/// must not verify it), then verifies through the API and logs in.
async fn reader(app: &TestApp, links: &mut LinkCheck, email: &str) -> reqwest::Client {
    let registered = app.register(email, PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let verification = app.mailbox.nth(email, 1).await;
    links.check_new(app).await;
    assert!(
        !is_verified(app, email),
        "opening the verification link verified the address"
    );
    let verified = app
        .post(
            &app.api,
            "/api/v1/accounts/verify",
            json!({ "token": verification.token() }),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert!(is_verified(app, email));
    let session = TestApp::browser();
    assert_eq!(
        app.login_with(&session, email, PASSWORD).await.status(),
        StatusCode::OK
    );
    links.log_in(email, session.clone());
    session
}

#[tokio::test]
async fn every_link_in_every_email_lands_on_a_page() {
    // A Tuesday in January: London is on UTC, the admins' summary is due at
    // 08:00 and the digest's send time (07:00) has passed by then.
    let app = TestApp::spawn_at(utc(2027, 1, 12, 6, 0), deliverability::with_dkim).await;
    let mut links = LinkCheck::new();

    let admin_email = "admin@example.com";
    let admin = TestApp::browser();
    app.privileged(&admin, admin_email, "admin").await;
    links.log_in(admin_email, admin.clone());
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let draft = app
        .draft(
            &editor,
            article("Patent ruling", "patents", &[], "The full story."),
        )
        .await;
    app.publish(&editor, &draft).await;
    app.clock.advance(Duration::minutes(1));

    // Accounts: verify_email, account_exists, password_reset, password_changed.
    let ada = "ada@analyticalengines.com";
    reader(&app, &mut links, ada).await;
    assert_eq!(
        app.register(ada, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    app.mailbox.wait_for(ada, 2).await;
    links.check_new(&app).await;
    let reset = app
        .post(&app.api, "/api/v1/password-resets", json!({ "email": ada }))
        .await;
    assert_eq!(reset.status(), StatusCode::ACCEPTED);
    let reset_mail = app.mailbox.nth(ada, 3).await;
    links.check_new(&app).await;
    let new_password = "a brand new passphrase";
    let confirmed = app
        .post(
            &app.api,
            "/api/v1/password-resets/confirm",
            json!({ "token": reset_mail.token(), "password": new_password }),
        )
        .await;
    assert_eq!(
        confirmed.status(),
        StatusCode::OK,
        "opening the reset link spent its token"
    );
    app.mailbox.wait_for(ada, 4).await;
    // The new password ended the old sessions.
    let session = TestApp::browser();
    assert_eq!(
        app.login_with(&session, ada, new_password).await.status(),
        StatusCode::OK
    );
    links.log_in(ada, session);
    links.check_new(&app).await;

    // The newsletter: newsletter_confirm, newsletter_welcome.
    let news = "news@example.com";
    let signed_up = app
        .post(
            &app.api,
            "/api/v1/newsletter/subscriptions",
            json!({ "email": news, "sections": ["patents"] }),
        )
        .await;
    assert_eq!(signed_up.status(), StatusCode::ACCEPTED);
    let confirmation = app.mailbox.nth(news, 1).await;
    links.check_new(&app).await;
    assert_eq!(
        app.subscriber(news).expect("stored").status,
        SubscriberStatus::Pending,
        "opening the confirmation link confirmed the subscription"
    );
    let confirmed = app
        .post(
            &TestApp::browser(),
            "/api/v1/newsletter/confirm",
            json!({ "token": confirmation.token() }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    app.mailbox.wait_for(news, 2).await;
    links.check_new(&app).await;
    assert_eq!(
        app.subscriber(news).expect("stored").status,
        SubscriberStatus::Confirmed,
        "opening the preferences or unsubscribe link changed the subscription"
    );

    // Trials: trial_received twice, then the admins' summary at 08:00.
    let ada_session = links.sessions.get(ada).expect("ada's session").clone();
    let approved_id = trial(&app, &ada_session, "Analytical Engines").await;
    app.mailbox.wait_for(ada, 5).await;
    let bob = "bob@globex.com";
    let bob_session = reader(&app, &mut links, bob).await;
    let rejected_id = trial(&app, &bob_session, "Globex").await;
    app.mailbox.wait_for(bob, 2).await;
    links.check_new(&app).await;
    app.set_time(utc(2027, 1, 12, 8, 0));
    app.mailbox.wait_for(admin_email, 1).await;
    links.check_new(&app).await;

    // trial_approved and trial_rejected, once their undo minutes are up.
    let decided = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{approved_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::OK);
    let decided = app
        .post(
            &admin,
            &format!("/api/v1/admin/trials/{rejected_id}/reject"),
            json!({ "reason": "We could not confirm your role at Globex." }),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::OK);
    app.clock
        .advance(Duration::minutes(app.settings.trials.undo_minutes));
    app.mailbox.wait_for(ada, 6).await;
    app.mailbox.wait_for(bob, 3).await;
    links.check_new(&app).await;

    // The digest of the day, sent by an admin.
    let run = app
        .post(&admin, "/api/v1/admin/digests/2027-01-12/send", json!({}))
        .await;
    assert_eq!(run.status(), StatusCode::ACCEPTED);
    app.mailbox.wait_for(news, 3).await;
    links.check_new(&app).await;
    assert_eq!(
        app.subscriber(news).expect("stored").status,
        SubscriberStatus::Confirmed,
        "opening the digest's links changed the subscription"
    );

    // trial_reminder and trial_ended, as the trial runs its course.
    let length = app.settings.trials.length_days;
    let reminder = app.settings.trials.reminder_days_before;
    app.clock.advance(Duration::days(length - reminder));
    app.mailbox.wait_for(ada, 7).await;
    links.check_new(&app).await;
    app.clock.advance(Duration::days(reminder));
    app.mailbox.wait_for(ada, 8).await;
    links.check_new(&app).await;

    // Company access: company_join_link, company_seats_taken with
    // company_seats_full (to sales), company_no_match.
    for (name, domain, seats) in [
        ("Initech", "initech.com", 1),
        ("Umbrella", "umbrella.com", 0),
    ] {
        let created = app
            .post(
                &admin,
                "/api/v1/admin/organizations",
                json!({ "name": name, "seat_count": seats, "ends_at": "2099-01-01T00:00:00Z", "domains": [domain] }),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    for email in [
        "carol@initech.com",
        "dave@umbrella.com",
        "erin@nowhere-corp.com",
    ] {
        let asked = app
            .post(
                &app.api,
                "/api/v1/company-access",
                json!({ "email": email }),
            )
            .await;
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
        app.mailbox.wait_for(email, 1).await;
    }
    app.mailbox
        .wait_for(&app.settings.mail.sales_email, 1)
        .await;
    links.check_new(&app).await;

    // Sales inquiries: inquiry_received to the sender, inquiry_sales to
    // sales, whose console link an admin opens.
    let sales = app.settings.mail.sales_email.clone();
    links.log_in(&sales, admin.clone());
    let to_sales = app.mailbox.to(&sales).len();
    let buyer = "frank@hooli.com";
    let inquiry = app
        .post(
            &app.api,
            "/api/v1/inquiries",
            json!({ "name": "Frank", "email": buyer, "company": "Hooli", "seats": 40 }),
        )
        .await;
    assert_eq!(inquiry.status(), StatusCode::ACCEPTED);
    app.mailbox.wait_for(buyer, 1).await;
    app.mailbox.wait_for(&sales, to_sales + 1).await;
    links.check_new(&app).await;

    let mut report = String::new();
    for (template, paths) in &links.seen {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        report.push_str(&format!("{template:<20} {}\n", paths.join("  ")));
    }
    println!("{report}");
    assert!(
        links.failures.is_empty(),
        "emails that fail their checks, or links that do not land on a page:\n{}",
        links.failures.join("\n")
    );
    let missing: Vec<String> = templates_on_disk()
        .into_iter()
        .filter(|name| !links.seen.contains_key(name))
        .collect();
    assert!(
        missing.is_empty(),
        "no flow in this test sends {missing:?}: add one, so their links are checked too"
    );
}

/// Asks for a trial for `company`; returns the request's id.
async fn trial(app: &TestApp, reader: &reqwest::Client, company: &str) -> String {
    let response = app.request_trial(reader, company).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let trial: serde_json::Value = response.json().await.expect("json");
    trial["id"].as_str().expect("an id").to_owned()
}
