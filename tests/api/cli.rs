use reqwest::StatusCode;

use crate::helpers::{TestApp, PASSWORD};

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin_and_refuses_duplicates() {
    let app = TestApp::spawn().await;
    let admin = TestApp::browser();
    app.privileged(&admin, "chief@example.com", "admin").await;
    let me: serde_json::Value = app
        .get(&admin, "/api/v1/me")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["email_verified"], true);

    let again = app.cli(
        &[
            "admin",
            "create",
            "--email",
            "chief@example.com",
            "--role",
            "admin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let weak = app.cli(
        &[
            "admin",
            "create",
            "--email",
            "weak@example.com",
            "--role",
            "editor",
        ],
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
    assert_eq!(
        app.login_with(&TestApp::browser(), "weak@example.com", "short")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn migrate_reports_what_it_applied() {
    let app = TestApp::spawn().await;
    let out = app.cli(&["migrate"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "database is up to date"
    );
}

#[tokio::test]
async fn a_bad_database_url_is_reported_with_the_drivers_reason() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_masthead"))
        .arg("migrate")
        .env("MASTHEAD_ENV", "test")
        .env(
            "MASTHEAD__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connecting to the postgres database"),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_masthead"))
        .arg("migrate")
        .env("MASTHEAD_ENV", "test")
        .env("MASTHEAD__DATABASE__URL", "mysql://localhost/x")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must start with sqlite:// or postgres://")
    );
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_masthead"))
        .arg("serve")
        .env("MASTHEAD_ENV", "test")
        .env(
            "MASTHEAD__DATABASE__URL",
            format!("sqlite://{}", dir.path().join("m.db").display()),
        )
        .env("MASTHEAD__LOG__LEVEL", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let stdout = child.stdout.take().expect("stdout");
    let port: u16 = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a first line");
        line.trim()
            .rsplit("port ")
            .next()
            .and_then(|p| p.trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("a port in {line:?}"))
    };
    let live = reqwest::get(format!("http://127.0.0.1:{port}/health/live"))
        .await
        .expect("up");
    assert_eq!(live.status(), StatusCode::OK);

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("exits");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    assert!(logs.contains("worker stopped"), "{logs}");
}

#[tokio::test]
async fn admin_create_points_to_the_console_that_then_opens() {
    let app = TestApp::spawn().await;
    let out = app.cli(
        &[
            "admin",
            "create",
            "--email",
            "desk@example.com",
            "--role",
            "editor",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let console = format!("{}/admin/articles", app.address);
    assert!(stdout.contains(&console), "{stdout}");
    let editor = TestApp::browser();
    assert_eq!(
        app.login_with(&editor, "desk@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _) = app.page(&editor, "/admin/articles").await;
    assert_eq!(status, StatusCode::OK);
}
