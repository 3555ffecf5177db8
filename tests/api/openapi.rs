//! The API description: OpenAPI 3.1 at /api/openapi.json, every route the
//! application serves under /api described and nothing else, and the
//! browser at /api/docs served from the binary.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{article, TestApp};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `/articles/{slug}` and `/articles/{id}` are one route to the router:
/// parameters are compared by position, not by name.
fn shape(path: &str) -> String {
    let mut shaped = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                shaped.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => shaped.push(c),
        }
    }
    shaped
}

/// Every string literal between `from` and the `;` that ends the statement.
fn statement_after<'a>(source: &'a str, from: &str) -> &'a str {
    let start = source
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not found"));
    let rest = &source[start..];
    &rest[..rest.find(';').unwrap_or(rest.len())]
}

/// The modules of `http/api/` whose routes `app.rs` mounts under `/api/v1`: each module,
/// the function that registers them, and the prefix of the scope they are
/// mounted in (`admin_routes` under `/admin`).
fn api_modules(app_rs: &str) -> Vec<(String, String, &'static str)> {
    let scope = statement_after(app_rs, "web::scope(\"/api/v1\")");
    scope
        .split(".configure(")
        .skip(1)
        .map(|call| {
            let target = call.split(')').next().unwrap_or_default();
            let (module, function) = target
                .trim_start_matches("api::")
                .split_once("::")
                .unwrap_or_default();
            let prefix = match function {
                "routes" => "",
                "admin_routes" => "/admin",
                _ => panic!("unexpected configure call under /api/v1: {target}"),
            };
            assert!(!module.is_empty(), "unexpected configure call: {target}");
            (module.to_owned(), function.to_owned(), prefix)
        })
        .collect()
}

/// `(method, path)` of each `.route("…", web::method()…)` in a module's
/// `function`; a route after `web::scope("…")` is taken to be inside it.
fn module_routes(http_rs: &str, function: &str) -> Vec<(String, String)> {
    let body = statement_after(http_rs, &format!("pub fn {function}("));
    let mut scope = String::new();
    let mut routes = Vec::new();
    for call in body.split(".route(").skip(1) {
        let path = call.split('"').nth(1).expect("a route's path literal");
        let method = call
            .split("web::")
            .nth(1)
            .and_then(|rest| rest.split("()").next())
            .expect("a route's method");
        routes.push((method.to_owned(), format!("{scope}{path}")));
        if let Some((_, rest)) = call.split_once("web::scope(\"") {
            scope = rest.split('"').next().unwrap_or_default().to_owned();
        }
    }
    routes
        .into_iter()
        // `web::route()` answers the methods a path does not serve.
        .filter(|(method, _)| method != "route")
        .inspect(|(method, path)| assert!(METHODS.contains(&method.as_str()), "{method} {path}"))
        .collect()
}

/// What the source serves under /api: every module's JSON routes, read from
/// the code that registers them.
fn served_routes() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let app_rs = read(root.join("app.rs"));
    let modules = api_modules(&app_rs);
    assert!(modules.len() >= 13, "found only {modules:?} under /api/v1");
    let mut routes = BTreeSet::new();
    for (module, function, prefix) in modules {
        let http_rs = read(root.join("http/api").join(format!("{module}.rs")));
        for (method, path) in module_routes(&http_rs, &function) {
            routes.insert((method, shape(&format!("/api/v1{prefix}{path}"))));
        }
    }
    routes
}

fn documented_operations(document: &Value) -> Vec<(String, String, Value)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                operations.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    operations
}

async fn description(app: &TestApp) -> Value {
    let response = app.get(&app.api, "/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    response.json().await.expect("the description is JSON")
}

#[tokio::test]
async fn the_description_is_openapi_3_1_and_names_every_api_route_the_source_serves() {
    let app = TestApp::spawn().await;
    let document = description(&app).await;
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "{version}");

    let documented: BTreeSet<(String, String)> = documented_operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, shape(&path)))
        .collect();
    let served = served_routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not described: {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "described but not served: {not_served:?}"
    );

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "masthead_session");
    assert_eq!(schemes["bounce_hook"]["scheme"], "bearer");
}

#[tokio::test]
async fn every_operation_names_its_answers_its_parameters_and_who_may_call_it() {
    let app = TestApp::spawn().await;
    let document = description(&app).await;
    let mut ids = BTreeSet::new();
    for (method, path, operation) in documented_operations(&document) {
        let id = operation["operationId"].as_str().expect("an operation id");
        assert!(
            ids.insert(id.to_owned()),
            "{method} {path}: {id} is used twice"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path}: no success answer"
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["$ref"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("#/components/responses/")),
                    "{method} {path} {status}: an error is a problem+json response"
                );
            }
        }
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_template: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split('}').next())
            .collect();
        assert_eq!(in_path, in_template, "{method} {path}: path parameters");
        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if path.contains("/admin/") || path.ends_with("/me") || path.ends_with("/mine") {
            assert!(!security.is_empty(), "{method} {path}: needs a login");
            assert!(
                responses.contains_key("401"),
                "{method} {path}: says nothing of 401"
            );
        }
        if ["post", "put", "patch"].contains(&method.as_str())
            && operation.get("requestBody").is_some()
        {
            for status in ["400", "415", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: says nothing of {status}"
                );
            }
        }
    }
    for problem in [
        "Invalid",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "Conflict",
    ] {
        let content = &document["components"]["responses"][problem]["content"];
        assert_eq!(
            content["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
}

/// Fills a path template so that the router, if it serves the route, hands
/// the request to its handler.
fn concrete(path: &str, operation: &Value, slug: &str) -> String {
    let mut concrete = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().expect("a name");
        let value = match parameter["schema"]["format"].as_str() {
            Some("uuid") => uuid::Uuid::nil().to_string(),
            Some("date") => "2026-01-05".to_owned(),
            _ if name == "article" => slug.to_owned(),
            _ => "example.com".to_owned(),
        };
        concrete = concrete.replace(&format!("{{{name}}}"), &value);
    }
    concrete
}

#[tokio::test]
async fn every_described_operation_reaches_a_handler() {
    let app = TestApp::spawn().await;
    let editor = app.editor().await;
    app.create_section(&editor, "Patents").await;
    let draft = app
        .draft(&editor, article("Routes", "patents", &[], "A body."))
        .await;
    let published = app.publish(&editor, &draft).await;
    let slug = published["slug"].as_str().expect("a slug");
    let document = description(&app).await;

    // What the router answers for a route it does not serve.
    let missing = app.get(&app.api, "/api/v1/no-such-route").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let operations = documented_operations(&document);
    assert!(
        operations.len() >= 60,
        "only {} operations",
        operations.len()
    );
    for (method, path, operation) in operations {
        let url = app.url(&concrete(&path, &operation, slug));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        // Anonymous and without a body: a handler answers 401, 415, 422 or
        // (for public reads) 200; only the router answers 404 or 405.
        let response = app
            .api
            .request(method.clone(), &url)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {url} answered {status}: described but not routed"
        );
        assert!(
            !status.is_server_error(),
            "{method} {url} answered {status}"
        );
    }
}

#[tokio::test]
async fn the_docs_page_loads_its_assets_from_this_site_only() {
    let app = TestApp::spawn().await;
    let bare = app.get(&app.api, "/api/docs").await;
    assert_eq!(bare.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        bare.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/api/docs/")
    );
    let docs = app.get(&app.api, "/api/docs/").await;
    assert_eq!(docs.status(), StatusCode::OK);
    let policy = docs
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a content security policy")
        .to_owned();
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(docs
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let page = docs.text().await.expect("a page");
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"),
        "the page names another site: {page}"
    );

    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| {
            [".js", ".css", ".png"]
                .iter()
                .any(|extension| part.ends_with(extension))
        })
        .collect();
    assert!(assets.len() >= 4, "assets: {assets:?}");
    for asset in assets {
        let path = format!("/api/docs/{}", asset.trim_start_matches("./"));
        let response = app.get(&app.api, &path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = response.bytes().await.expect("an asset");
        assert!(!body.is_empty(), "{path} is empty");
        if path.ends_with("swagger-initializer.js") {
            let script = String::from_utf8_lossy(&body);
            assert!(script.contains("/api/openapi.json"), "{script}");
            assert!(!script.contains("petstore"), "{script}");
        }
    }
}

#[tokio::test]
async fn a_method_a_path_does_not_serve_is_405_naming_those_it_does() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (Method::PUT, "/api/v1/sessions", "POST, DELETE"),
        (Method::TRACE, "/api/v1/articles", "GET, POST"),
        (Method::DELETE, "/api/v1/admin/trials/bulk", "POST"),
        (Method::GET, "/api/v1/admin/trials/bulk", "POST"),
        (Method::PUT, "/api/v1/articles/some-slug", "GET, PATCH"),
    ] {
        let response = app
            .api
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("request sent");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let problem: Value = response.json().await.expect("problem+json");
        assert_eq!(problem["status"], 405);
    }
    let unknown = app.get(&app.api, "/api/v1/articles/a/b/c").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// PostgreSQL cannot hold or compare text with a NUL character: it is
/// refused at the door, on both databases, instead of failing in a query.
#[tokio::test]
async fn a_nul_character_in_a_url_or_a_body_is_refused_naming_where() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/articles?tag=a%00b",
        "/api/v1/articles?q=a%00b",
        "/search?q=a%00b",
    ] {
        let response = app.get(&app.api, path).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
    }
    let response = app
        .post(
            &app.api,
            "/api/v1/password-resets",
            serde_json::json!({ "email": "a\u{0}b@example.com" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = response.json().await.expect("problem+json");
    assert_eq!(problem["errors"][0]["field"], "body");
    assert_eq!(problem["errors"][0]["reason"], "invalid_characters");
}
