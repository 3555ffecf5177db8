use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb};

#[tokio::test]
async fn live_and_ready_answer_and_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let live = app.get(&app.api, "/health/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    let request_id = live
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");

    let ready = app.get(&app.api, "/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");
}

/// On PostgreSQL, a pooled connection whose server went away (a restart,
/// an administrator ending its session) fails the one request that finds
/// out, as unavailable, and is thrown away; the requests after it get new
/// connections. A connection idle for a while is checked before it is lent,
/// so it may be replaced without any request failing. SQLite's connections
/// are this process's own files and are never closed under it.
#[tokio::test]
async fn a_connection_the_database_closed_fails_one_request_and_is_replaced() {
    use diesel::{Connection, RunQueryDsl};

    let app = TestApp::spawn().await;
    let ready = || app.get(&app.api, "/health/ready");
    let warm = futures_util::future::join_all((0..8).map(|_| ready())).await;
    assert!(warm.iter().all(|r| r.status() == StatusCode::OK));
    let closed = match app.db.as_ref() {
        TestDb::Postgres {
            admin_url, name, ..
        } => {
            #[derive(diesel::QueryableByName)]
            struct Closed {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                closed: i64,
            }
            let mut admin = diesel::PgConnection::establish(admin_url).expect("a connection");
            diesel::sql_query(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS closed \
                 FROM pg_stat_activity WHERE datname = $1",
            )
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result::<Closed>(&mut admin)
            .expect("ending the sessions")
            .closed
        }
        TestDb::Sqlite(_) => 0,
    };
    if matches!(app.db.as_ref(), TestDb::Postgres { .. }) {
        assert!(closed > 0, "the instance had sessions open");
    }
    let mut answers = Vec::new();
    for _ in 0..closed + 10 {
        answers.push(ready().await.status());
    }
    let unavailable = answers
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(
        unavailable <= usize::try_from(closed).expect("a count"),
        "{unavailable} requests failed for {closed} closed connections: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{answers:?}"
    );
    assert!(
        answers[answers.len() - 10..]
            .iter()
            .all(|s| *s == StatusCode::OK),
        "the dead connections are gone: {answers:?}"
    );
}
