use reqwest::StatusCode;

use crate::helpers::{assert_problem, TestApp};

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let response = app
        .api
        .post(app.url("/api/v1/accounts"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::BAD_REQUEST, None).await;
}

#[tokio::test]
async fn missing_and_mistyped_fields_are_named() {
    let app = TestApp::spawn().await;
    let missing = app
        .post(
            &app.api,
            "/api/v1/accounts",
            serde_json::json!({ "email": "a@example.com", "name": "A" }),
        )
        .await;
    let body = assert_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, Some("password")).await;
    assert_eq!(body["errors"][0]["reason"], "required");

    let mistyped = app
        .post(
            &app.api,
            "/api/v1/sessions",
            serde_json::json!({ "email": 42, "password": "x" }),
        )
        .await;
    assert_problem(mistyped, StatusCode::UNPROCESSABLE_ENTITY, Some("email")).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let response = app
        .api
        .post(app.url("/api/v1/sessions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40example.com&password=x")
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, None).await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = TestApp::spawn().await;
    let limit = app.settings.server.body_limit_bytes;
    let name = "x".repeat(limit + 1);
    let response = app
        .post(
            &app.api,
            "/api/v1/accounts",
            serde_json::json!({ "email": "big@example.com", "password": "long enough", "name": name }),
        )
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, None).await;
}

#[tokio::test]
async fn unknown_paths_are_a_404_problem() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get(&app.api, "/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
}
