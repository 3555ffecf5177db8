use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

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
