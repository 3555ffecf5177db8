use chrono::Duration;
use masthead::platform::domain::EmailAddress;
use masthead::platform::mail::model::{AttemptOutcome, OutboxMessage, OutboxStatus};
use reqwest::StatusCode;

use crate::helpers::{eventually, without_form_limits, Mailbox, ReceivedEmail, TestApp, PASSWORD};
use crate::smtp_sink::SmtpSink;

/// What the outbox holds for one address, read straight from the database.
fn outbox_for(app: &TestApp, address: &str) -> Vec<(OutboxMessage, Vec<AttemptOutcome>)> {
    let pool = app.pool();
    let to = EmailAddress::parse(address).expect("valid");
    let mut conn = pool.get().expect("conn");
    masthead::platform::mail::store::for_recipient(&mut conn, &to)
        .expect("query")
        .into_iter()
        .map(|message| {
            let attempts = masthead::platform::mail::store::attempts(&mut conn, message.id)
                .expect("attempts")
                .into_iter()
                .map(|a| a.outcome)
                .collect();
            (message, attempts)
        })
        .collect()
}

/// Waits until the first attempt at `email`'s message has failed for now,
/// and checks that the message waits one back-off period for the next.
async fn failed_once_and_waits_one_backoff(app: &TestApp, email: &str) -> OutboxMessage {
    eventually("a failed first attempt", || {
        outbox_for(app, email)
            .first()
            .is_some_and(|(_, attempts)| attempts == &[AttemptOutcome::TransientFailure])
    })
    .await;
    let (message, _) = outbox_for(app, email).remove(0);
    assert_eq!(message.status, OutboxStatus::Pending);
    assert_eq!(
        message.next_attempt_at,
        (app.now() + Duration::seconds(app.settings.worker.backoff_base_secs)).naive_utc(),
        "the retry waits one back-off period"
    );
    message
}

#[tokio::test]
async fn mail_committed_before_a_crash_is_delivered_after_restart() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    let email = "patient@example.com";
    assert_eq!(
        app.register(email, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );

    let queued = outbox_for(&app, email);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0.status, OutboxStatus::Pending);
    assert!(app.mailbox.to(email).is_empty());

    let app = app.restart(|s| s.worker.enabled = true).await;
    let mail = app.mailbox.nth(email, 1).await;
    assert!(mail.subject().contains("Confirm your email address"));
    eventually("the outbox to record the delivery", || {
        outbox_for(&app, email)[0].0.status == OutboxStatus::Sent
    })
    .await;
    assert_eq!(app.mailbox.to(email).len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn mail_is_retried_with_back_off_while_the_smtp_server_is_down() {
    let down_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("bound").port()
    };
    let app = TestApp::spawn_with(|s| s.mail.smtp.port = down_port).await;
    let email = "retry@example.com";
    app.register(email, PASSWORD).await;

    let message = failed_once_and_waits_one_backoff(&app, email).await;
    assert!(message.last_error.is_some());
    let backoff = app.settings.worker.backoff_base_secs;

    let mailbox = Mailbox::start_on(down_port);
    app.clock.advance(Duration::seconds(backoff - 1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(mailbox.to(email).is_empty(), "not retried before its time");

    app.clock.advance(Duration::seconds(1));
    let mail = mailbox.nth(email, 1).await;
    assert!(mail.subject().contains("Confirm your email address"));
    eventually("the outbox to record the delivery", || {
        outbox_for(&app, email)[0].1 == [AttemptOutcome::TransientFailure, AttemptOutcome::Sent]
    })
    .await;
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_and_not_retried() {
    let app = TestApp::spawn().await;
    let email = "bounce@example.com";
    app.register(email, PASSWORD).await;
    eventually("the refusal to be recorded", || {
        outbox_for(&app, email)
            .first()
            .is_some_and(|(m, _)| m.status == OutboxStatus::Failed)
    })
    .await;
    app.clock.advance(Duration::hours(24));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (message, attempts) = outbox_for(&app, email).remove(0);
    assert_eq!(attempts, [AttemptOutcome::PermanentFailure]);
    assert!(message.last_error.unwrap_or_default().contains("550"));
}

#[tokio::test]
async fn messages_have_text_and_inlined_html_parts_from_the_configured_sender() {
    let app = TestApp::spawn().await;
    let email = "reader@example.com";
    app.post(
        &app.api,
        "/api/v1/accounts",
        serde_json::json!({ "email": email, "password": PASSWORD, "name": "<script>alert(1)</script> Bob" }),
    )
    .await;
    let mail = app.mailbox.nth(email, 1).await;
    assert_eq!(
        mail.header("From").as_deref(),
        Some(app.settings.mail.from.as_str())
    );
    assert_eq!(mail.header("To").as_deref(), Some(email));
    assert!(mail
        .header("Message-ID")
        .is_some_and(|id| id.ends_with("@masthead.example>")));

    // Mail to an address nobody has proven to own greets no one by name:
    // what a registration calls itself is not repeated to that address.
    let text = mail.text();
    assert!(text.contains("Hello,"), "{text}");
    assert!(!text.contains("alert(1)"), "{text}");
    let html = mail.html();
    assert!(!html.contains("alert(1)"), "{html}");
    assert!(!html.contains("<script>"));
    assert!(
        html.contains("<p style=\"font-size:16px"),
        "styles are inline for mail clients"
    );
    assert!(
        !html.contains("<style"),
        "no style block, which mail clients strip"
    );
    let unescaped = html.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(unescaped.contains(&format!("href=\"{}\"", mail.link_containing("token="))));
}

#[tokio::test]
async fn retries_double_their_wait_and_stop_after_the_last_attempt() {
    let down_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("bound").port()
    };
    let app = TestApp::spawn_with(|s| {
        s.mail.smtp.port = down_port;
        s.worker.max_attempts = 3;
    })
    .await;
    let email = "unlucky@example.com";
    app.register(email, PASSWORD).await;
    let base = app.settings.worker.backoff_base_secs;

    let attempts = |n: usize| {
        let app = &app;
        move || {
            outbox_for(app, email)
                .first()
                .is_some_and(|(_, a)| a.len() == n)
        }
    };
    eventually("the first attempt", attempts(1)).await;
    let first_retry = outbox_for(&app, email)[0].0.next_attempt_at;
    assert_eq!(
        first_retry,
        (app.now() + Duration::seconds(base)).naive_utc()
    );

    app.clock.advance(Duration::seconds(base));
    eventually("the second attempt", attempts(2)).await;
    let second_retry = outbox_for(&app, email)[0].0.next_attempt_at;
    assert_eq!(
        second_retry,
        (app.now() + Duration::seconds(2 * base)).naive_utc()
    );

    app.clock.advance(Duration::seconds(2 * base));
    eventually("the last attempt", attempts(3)).await;
    let (message, outcomes) = outbox_for(&app, email).remove(0);
    assert_eq!(message.status, OutboxStatus::Failed);
    assert_eq!(outcomes, [AttemptOutcome::TransientFailure; 3]);
}

#[tokio::test]
async fn a_message_claimed_by_a_worker_that_died_is_sent_once_its_lease_runs_out() {
    let app = TestApp::spawn_with(|s| s.worker.enabled = false).await;
    let email = "orphan@example.com";
    app.register(email, PASSWORD).await;

    // A worker claims the message and dies before sending it.
    let now = app.now();
    let lease = Duration::seconds(app.settings.worker.lease_secs);
    let pool = app.pool();
    let claimed = {
        let mut conn = pool.get().expect("conn");
        let lease = masthead::platform::mail::store::Lease {
            now: now.naive_utc(),
            until: (now + lease).naive_utc(),
        };
        masthead::platform::mail::store::claim_due(&mut conn, lease, 10, &[]).expect("claim")
    };
    assert_eq!(claimed.len(), 1);

    let app = app.restart(|s| s.worker.enabled = true).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.mailbox.to(email).is_empty(),
        "still leased to the dead worker"
    );

    app.clock.advance(lease);
    app.mailbox.nth(email, 1).await;
    eventually("the delivery to be recorded", || {
        outbox_for(&app, email)[0].0.status == OutboxStatus::Sent
    })
    .await;
    assert_eq!(outbox_for(&app, email)[0].0.attempts, 2);
}

/// Messages still waiting for their turn, or being sent, when their leases
/// run out (a slow receiving server) are not claimed again by the worker
/// that holds them: each goes out once.
#[tokio::test]
async fn messages_held_past_their_leases_by_a_slow_server_go_out_once() {
    let app = TestApp::spawn_with(|s| {
        without_form_limits(s);
        s.worker.enabled = false;
        s.worker.batch_size = 2;
        s.worker.concurrency = 1;
    })
    .await;
    let readers: Vec<String> = (0..6).map(|i| format!("slow{i}@example.com")).collect();
    let readers: Vec<&str> = readers.iter().map(String::as_str).collect();
    for reader in &readers {
        assert_eq!(app.subscribe(reader).await.status(), StatusCode::ACCEPTED);
    }
    app.mailbox.set_delay(std::time::Duration::from_millis(300));
    let app = app.restart(|s| s.worker.enabled = true).await;
    eventually("a first claim", || {
        readers
            .iter()
            .any(|reader| outbox_for(&app, reader)[0].0.attempts == 1)
    })
    .await;
    app.clock
        .advance(Duration::seconds(app.settings.worker.lease_secs + 1));

    for reader in &readers {
        app.mailbox.nth(reader, 1).await;
    }
    settled(&app, &readers, |m| m.status == OutboxStatus::Sent).await;
    for reader in &readers {
        assert_eq!(app.mailbox.to(reader).len(), 1, "{reader}");
        assert_eq!(outbox_for(&app, reader)[0].0.attempts, 1, "{reader}");
    }
}

#[tokio::test]
async fn a_burst_of_mail_goes_out_at_once_not_a_batch_per_poll() {
    // With an hour between polls, only the wake-up on enqueue and draining
    // batch after batch can deliver these within the mailbox's patience.
    let app = TestApp::spawn_with(|s| {
        s.worker.poll_interval_ms = 3_600_000;
        s.worker.batch_size = 4;
    })
    .await;
    let readers: Vec<String> = (0..13).map(|i| format!("burst{i}@example.com")).collect();
    for reader in &readers {
        assert_eq!(app.subscribe(reader).await.status(), StatusCode::ACCEPTED);
    }
    for reader in &readers {
        let mail = app.mailbox.nth(reader, 1).await;
        assert!(mail.subject().contains("Confirm"), "{}", mail.subject());
    }
}

/// The outbox rows of `readers`, once each has one that `done` accepts.
async fn settled(app: &TestApp, readers: &[&str], done: impl Fn(&OutboxMessage) -> bool) {
    eventually("every message to be settled", || {
        readers.iter().all(|reader| {
            outbox_for(app, reader)
                .first()
                .is_some_and(|(message, _)| done(message))
        })
    })
    .await;
}

/// The one message smtp-sink received for `reader`.
fn one_for<'a>(received: &'a [ReceivedEmail], reader: &str) -> &'a ReceivedEmail {
    received
        .iter()
        .find(|mail| mail.recipients == [reader.to_string()])
        .unwrap_or_else(|| panic!("nothing for {reader}"))
}

/// The answer to confirming with the token in `mail`'s link.
async fn confirm_with(app: &TestApp, mail: &ReceivedEmail) -> StatusCode {
    app.post(
        &TestApp::browser(),
        "/api/v1/newsletter/confirm",
        serde_json::json!({ "token": mail.token() }),
    )
    .await
    .status()
}

#[tokio::test]
async fn mail_goes_out_pipelined_to_a_server_that_offers_it_and_arrives_whole() {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let app = TestApp::spawn_with(|s| {
        s.mail.smtp.port = sink.port;
        s.worker.batch_size = 5;
        without_form_limits(s);
    })
    .await;
    let readers: Vec<String> = (0..16).map(|i| format!("piped{i}@example.com")).collect();
    let readers: Vec<&str> = readers.iter().map(String::as_str).collect();
    for reader in &readers {
        assert_eq!(app.subscribe(reader).await.status(), StatusCode::ACCEPTED);
    }
    settled(&app, &readers, |m| m.status == OutboxStatus::Sent).await;

    let received = sink.received();
    assert_eq!(received.len(), readers.len(), "one message each, no more");
    for reader in &readers {
        let mail = one_for(&received, reader);
        assert!(mail.sender.starts_with("bounces+"), "{}", mail.sender);
        assert!(mail.subject().contains("Confirm your subscription"));
        // The link in the body works: the content arrived as it was sent.
        assert_eq!(confirm_with(&app, mail).await, StatusCode::OK, "{reader}");
    }
}

/// An app whose outbox holds a confirmation for each of `readers` before its
/// worker starts, so that the first claim takes them all: one SMTP session
/// sends them back to back, each message's content in one write with the
/// next one's MAIL, RCPT and DATA.
async fn queued_for_one_session(sink: &SmtpSink, readers: &[&str]) -> TestApp {
    let app = TestApp::spawn_with(|s| {
        s.mail.smtp.port = sink.port;
        s.worker.enabled = false;
        without_form_limits(s);
    })
    .await;
    for reader in readers {
        assert_eq!(app.subscribe(reader).await.status(), StatusCode::ACCEPTED);
    }
    app.restart(|s| {
        s.worker.enabled = true;
        s.worker.concurrency = 1;
    })
    .await
}

#[tokio::test]
async fn mail_pipelined_one_message_after_another_on_one_connection_arrives_whole() {
    let Some(sink) = SmtpSink::start(&[]) else {
        return;
    };
    let readers: Vec<String> = (0..12).map(|i| format!("chained{i}@example.com")).collect();
    let readers: Vec<&str> = readers.iter().map(String::as_str).collect();
    let app = queued_for_one_session(&sink, &readers).await;
    settled(&app, &readers, |m| m.status == OutboxStatus::Sent).await;

    let received = sink.received();
    assert_eq!(received.len(), readers.len(), "one message each, no more");
    for reader in &readers {
        let mail = one_for(&received, reader);
        assert!(mail.subject().contains("Confirm your subscription"));
        let (message, attempts) = outbox_for(&app, reader).remove(0);
        assert_eq!(attempts, [AttemptOutcome::Sent], "{reader}");
        // Each message went to its own envelope, not to its neighbour's.
        let message_id = mail.header("Message-ID").unwrap_or_default();
        assert!(
            message_id.contains(&message.id.to_string()),
            "{reader}: {message_id}"
        );
        assert_eq!(confirm_with(&app, mail).await, StatusCode::OK, "{reader}");
        assert!(
            app.subscriber(reader)
                .is_some_and(|s| s.confirmed_at.is_some()),
            "{reader}"
        );
    }
}

#[tokio::test]
async fn a_refusal_in_a_chain_of_pipelined_messages_leaves_the_next_to_a_new_connection() {
    // -A 0: every message is refused with 550 right after DATA's 354, and
    // the connection closed, with the next message's group already sent.
    let Some(sink) = SmtpSink::start(&["-A", "0"]) else {
        return;
    };
    let readers = [
        "link1@example.com",
        "link2@example.com",
        "link3@example.com",
    ];
    let app = queued_for_one_session(&sink, &readers).await;
    settled(&app, &readers, |m| m.status != OutboxStatus::Pending).await;
    for reader in readers {
        let (message, attempts) = outbox_for(&app, reader).remove(0);
        // Had the next message been failed with the closed connection, it
        // would wait for a retry instead of meeting the server's 550.
        assert_eq!(message.status, OutboxStatus::Failed, "{reader}");
        assert_eq!(attempts, [AttemptOutcome::PermanentFailure], "{reader}");
        assert!(message.last_error.unwrap_or_default().contains("550"));
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_pipelining_server_that_refuses_the_content_fails_each_message_for_good() {
    // -A 0: every message is refused with 550 right after DATA's 354.
    let Some(sink) = SmtpSink::start(&["-A", "0"]) else {
        return;
    };
    let app = TestApp::spawn_with(|s| s.mail.smtp.port = sink.port).await;
    // One after the other: had the refused connection been used again, the
    // second message would meet a closed connection (a transient failure),
    // not the server's 550.
    for reader in ["refused1@example.com", "refused2@example.com"] {
        app.subscribe(reader).await;
        settled(&app, &[reader], |m| m.status != OutboxStatus::Pending).await;
        let (message, attempts) = outbox_for(&app, reader).remove(0);
        assert_eq!(message.status, OutboxStatus::Failed, "{reader}");
        assert_eq!(attempts, [AttemptOutcome::PermanentFailure], "{reader}");
        assert!(message.last_error.unwrap_or_default().contains("550"));
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_pipelining_server_that_stops_answering_leaves_the_message_to_retry_at_once() {
    // -w 60: the server waits a minute before it answers DATA; masthead
    // gives up after mail.smtp.timeout_secs and does not wait out the
    // minute for an answer to its QUIT either.
    let Some(sink) = SmtpSink::start(&["-w", "60"]) else {
        return;
    };
    let app = TestApp::spawn_with(|s| {
        s.mail.smtp.port = sink.port;
        s.mail.smtp.timeout_secs = 1;
    })
    .await;
    let reader = "stalled@example.com";
    app.subscribe(reader).await;
    failed_once_and_waits_one_backoff(&app, reader).await;
}

#[tokio::test]
async fn a_pipelining_server_that_hangs_up_mid_group_leaves_the_message_to_retry() {
    // -q RCPT: the server closes the connection on RCPT, without a reply.
    let Some(sink) = SmtpSink::start(&["-q", "RCPT"]) else {
        return;
    };
    let app = TestApp::spawn_with(|s| s.mail.smtp.port = sink.port).await;
    let reader = "hungup@example.com";
    app.subscribe(reader).await;
    failed_once_and_waits_one_backoff(&app, reader).await;
}
