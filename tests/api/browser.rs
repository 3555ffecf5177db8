//! The pages in a real browser: headless Chromium driven through Debian's
//! chromedriver over the W3C WebDriver protocol, with axe-core for
//! accessibility and screenshots at desktop and phone width.
//!
//! The WebDriver client is a few JSON calls over the test's own `reqwest`:
//! the crates that wrap the protocol (fantoccini) pull in `webdriver`, which is
//! MPL-2.0 and outside the licences CI accepts.
//!
//! A test starts with
//! `let Some(browser) = Browser::start("name", &app).await else { return };`:
//! without Chromium, chromedriver or axe-core the test says so and passes,
//! unless MASTHEAD_REQUIRE_BROWSER=1 makes that a failure (CI sets it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use masthead::newsletter::SubscriberStatus;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::helpers::TestApp;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const AXE: &str = "tests/browser/node_modules/axe-core/axe.min.js";

/// How long the browser gets for anything: a page load, a script, a wait.
const PATIENCE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (360, 780);

/// The key under which WebDriver hands out element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether a missing browser fails the test instead of skipping it.
fn browser_required() -> bool {
    std::env::var("MASTHEAD_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a browser test needs from the machine: the path of axe-core, or
/// what is missing and how to install it.
fn prerequisites() -> Result<PathBuf, (&'static str, &'static str)> {
    if !Path::new(CHROMEDRIVER).is_file() || !Path::new(CHROMIUM).is_file() {
        return Err((
            "chromium/chromedriver not installed",
            "apt-get install chromium chromium-driver",
        ));
    }
    let axe = manifest_dir().join(AXE);
    if !axe.is_file() {
        return Err((
            "axe-core not installed",
            "run `npm ci --prefix tests/browser`",
        ));
    }
    Ok(axe)
}

/// One chromedriver per test process; each test opens its own session.
struct Driver {
    port: u16,
    _process: Mutex<Child>,
    /// Kept open for the life of the process: when the process ends, its
    /// write end closes and the watchdog stops chromedriver.
    _watchdog: Option<ChildStdin>,
}

async fn driver() -> &'static Driver {
    static DRIVER: OnceCell<Driver> = OnceCell::const_new();
    DRIVER.get_or_init(Driver::launch).await
}

impl Driver {
    async fn launch() -> Self {
        let http = reqwest::Client::new();
        // The port was free a moment ago; another process may take it
        // first, in which case chromedriver exits and we try another.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut process = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
            let deadline = tokio::time::Instant::now() + PATIENCE;
            let ready = loop {
                if process.try_wait().expect("chromedriver status").is_some() {
                    break false;
                }
                if let Ok(response) = http
                    .get(format!("http://127.0.0.1:{port}/status"))
                    .send()
                    .await
                {
                    if let Ok(status) = response.json::<Value>().await {
                        if status["value"]["ready"] == true {
                            break true;
                        }
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "chromedriver on port {port} did not become ready"
                );
                tokio::time::sleep(POLL).await;
            };
            if ready {
                let watchdog = Self::watchdog(process.id());
                return Self {
                    port,
                    _process: Mutex::new(process),
                    _watchdog: watchdog,
                };
            }
        }
        panic!("chromedriver exited at start three times");
    }

    /// A shell that waits for its standard input to close, then stops
    /// chromedriver, so none outlives the test process.
    fn watchdog(pid: u32) -> Option<ChildStdin> {
        Command::new("sh")
            .args(["-c", "cat >/dev/null; kill \"$1\" 2>/dev/null", "sh"])
            .arg(pid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .and_then(|mut child| child.stdin.take())
    }
}

/// Deletes the WebDriver session (closing its Chromium) when the test ends,
/// also when it panics. Plain blocking HTTP: no runtime is needed in `drop`.
struct Session {
    port: u16,
    id: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        let close = || -> std::io::Result<()> {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
            stream.set_read_timeout(Some(PATIENCE))?;
            write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.id, self.port
            )?;
            // chromedriver answers once Chromium has quit; the headers are
            // enough (it may keep the connection open after them).
            let mut reply = Vec::new();
            let mut chunk = [0; 512];
            while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk)? {
                    0 => break,
                    n => reply.extend_from_slice(&chunk[..n]),
                }
            }
            Ok(())
        };
        if let Err(e) = close() {
            eprintln!("closing WebDriver session {}: {e}", self.id);
        }
    }
}

/// One accessibility problem axe-core found.
#[derive(Debug, Clone, Deserialize)]
pub struct Violation {
    pub id: String,
    /// "minor", "moderate", "serious" or "critical".
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    /// The CSS selectors of the failing elements.
    pub targets: Vec<String>,
}

impl Violation {
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} [{}]\n    {}",
            self.id,
            self.impact.as_deref().unwrap_or("no impact"),
            self.help,
            self.help_url,
            self.targets.join("\n    ")
        )
    }
}

/// A headless Chromium with its own profile, pointed at one `TestApp`.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session_url: String,
    app_address: String,
    axe_path: PathBuf,
    // Dropped in this order: the session (and its Chromium) first, then its
    // profile folder.
    _session: Session,
    _profile: tempfile::TempDir,
}

/// An element on the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// A browser for `test`, or `None` (after saying why on stderr) when
    /// this machine has no Chromium, chromedriver or axe-core; with
    /// MASTHEAD_REQUIRE_BROWSER=1 that panics instead.
    pub async fn start(test: &str, app: &TestApp) -> Option<Self> {
        let axe_path = match prerequisites() {
            Ok(axe) => axe,
            Err((missing, remedy)) if browser_required() => {
                panic!("browser test {test} cannot run: {missing} ({remedy}; MASTHEAD_REQUIRE_BROWSER=1 is set)")
            }
            Err((missing, remedy)) => {
                // Straight to stderr, past the test harness's capture, so a
                // skip shows in an ordinary `cargo test`.
                let _ = writeln!(
                    std::io::stderr(),
                    "browser test {test} skipped: {missing} ({remedy}; set MASTHEAD_REQUIRE_BROWSER=1 to make this a failure)"
                );
                return None;
            }
        };
        let driver = driver().await;
        let profile = tempfile::tempdir().expect("a profile folder");
        let http = reqwest::Client::builder()
            .timeout(PATIENCE * 4)
            .build()
            .expect("an HTTP client");
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {
                        "implicit": 0,
                        "pageLoad": PATIENCE.as_millis() as u64,
                        "script": PATIENCE.as_millis() as u64,
                    },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--no-first-run",
                            format!("--user-data-dir={}", profile.path().display()),
                            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                        ],
                    },
                },
            },
        });
        let base = format!("http://127.0.0.1:{}", driver.port);
        let created = call(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await
        .unwrap_or_else(|e| panic!("browser test {test}: starting Chromium: {e}"));
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {created}"))
            .to_owned();
        Some(Self {
            http,
            session_url: format!("{base}/session/{id}"),
            app_address: app.address.clone(),
            axe_path,
            _session: Session {
                port: driver.port,
                id,
            },
            _profile: profile,
        })
    }

    /// One WebDriver command on this session; panics with the driver's
    /// error message when it fails.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        call(
            &self.http,
            method,
            &format!("{}{path}", self.session_url),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("WebDriver {what}: {e}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs `script`, which ends by calling `arguments[arguments.length - 1]`
    /// with its result.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
    }

    /// Opens `path` of the application (or, when it is not a path, a URL).
    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.app_address)
        } else {
            path.to_owned()
        };
        self.post("/url", json!({ "url": url })).await;
    }

    /// The path (and query) of the page on screen.
    pub async fn current_path(&self) -> String {
        self.execute("return location.pathname + location.search;", vec![])
            .await
            .as_str()
            .expect("a path")
            .to_owned()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.execute("return document.body.innerText;", vec![])
            .await
            .as_str()
            .expect("the page's text")
            .to_owned()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .expect("a title")
            .to_owned()
    }

    /// Waits until the page's text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page at {} never said {needle:?}; it says:\n{text}",
                self.current_path().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn element(&self, reference: &Value) -> Option<Element<'_>> {
        reference[ELEMENT].as_str().map(|id| Element {
            browser: self,
            id: id.to_owned(),
        })
    }

    /// The first element matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        self.find_all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css:?}"))
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_array()
            .expect("a list of elements")
            .iter()
            .filter_map(|reference| self.element(reference))
            .collect()
    }

    /// Types `value` into the field whose `<label>` reads `label`.
    pub async fn fill_label(&self, label: &str, value: &str) {
        let found = self
            .execute(
                "const wanted = arguments[0];
                 const norm = (s) => s.replace(/\\s+/g, ' ').trim();
                 for (const label of document.querySelectorAll('label')) {
                   if (norm(label.textContent) === wanted && label.control) return label.control;
                 }
                 return null;",
                vec![json!(label)],
            )
            .await;
        let field = self
            .element(&found)
            .unwrap_or_else(|| panic!("no field labelled {label:?}"));
        field.fill(value).await;
    }

    /// Types `value` into the field named `name`.
    pub async fn fill_name(&self, name: &str, value: &str) {
        let found = self
            .execute(
                "return document.getElementsByName(arguments[0])[0] || null;",
                vec![json!(name)],
            )
            .await;
        let field = self
            .element(&found)
            .unwrap_or_else(|| panic!("no field named {name:?}"));
        field.fill(value).await;
    }

    /// Clicks the button that reads `text`, as a person would.
    pub async fn click_button(&self, text: &str) {
        let found = self
            .execute(
                "const wanted = arguments[0];
                 const norm = (s) => s.replace(/\\s+/g, ' ').trim();
                 const buttons = document.querySelectorAll(
                   'button, input[type=submit], input[type=button], [role=button]');
                 for (const b of buttons) {
                   if (norm(b.tagName === 'INPUT' ? b.value : b.innerText) === wanted) return b;
                 }
                 return null;",
                vec![json!(text)],
            )
            .await;
        let button = self
            .element(&found)
            .unwrap_or_else(|| panic!("no button reads {text:?}"));
        button.click().await;
    }

    /// Sizes the window, then (where Chromium's DevTools answer) makes the
    /// page's viewport exactly `width`×`height`, as a phone when narrow: the
    /// window alone leaves room for browser chrome and a classic scrollbar.
    /// `None` goes back to the plain desktop window.
    async fn set_viewport(&self, size: Option<(u32, u32)>) {
        let (width, height) = size.unwrap_or(DESKTOP);
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
        let emulation = match size {
            Some((width, height)) => {
                self.cdp(
                    "Emulation.setDeviceMetricsOverride",
                    json!({
                        "width": width, "height": height,
                        "deviceScaleFactor": 1, "mobile": width < 600,
                    }),
                )
                .await
            }
            None => {
                self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                    .await
            }
        };
        if let Err(e) = emulation {
            eprintln!("viewport {width}x{height} from the window size only: {e}");
        }
        // Lets the page lay itself out at the new size.
        self.execute_async(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => requestAnimationFrame(() => done(null)));",
            vec![],
        )
        .await;
    }

    /// The whole page as a PNG (Chromium's DevTools), or what the window
    /// shows when that is not available.
    async fn png(&self) -> Vec<u8> {
        let full_page = async {
            let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
            let size = &metrics["cssContentSize"];
            let shot = self
                .cdp(
                    "Page.captureScreenshot",
                    json!({
                        "format": "png",
                        "captureBeyondViewport": true,
                        "clip": {
                            "x": 0, "y": 0, "scale": 1,
                            "width": size["width"], "height": size["height"],
                        },
                    }),
                )
                .await?;
            shot["data"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "no data".to_owned())
        };
        let encoded = match full_page.await {
            Ok(data) => data,
            Err(_) => self
                .get("/screenshot")
                .await
                .as_str()
                .expect("a screenshot")
                .to_owned(),
        };
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("a base64 PNG")
    }

    /// A Chrome DevTools command through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/goog/cdp/execute", self.session_url),
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// Saves the page at desktop and phone width as
    /// `<target>/screenshots/<name>-desktop.png` and `…-phone.png`;
    /// returns the two paths.
    pub async fn screenshot(&self, name: &str) -> [PathBuf; 2] {
        let folder = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir().join("target"))
            .join("screenshots");
        std::fs::create_dir_all(&folder).expect("a screenshots folder");
        let desktop = folder.join(format!("{name}-desktop.png"));
        let phone = folder.join(format!("{name}-phone.png"));
        for (size, path) in [(DESKTOP, &desktop), (PHONE, &phone)] {
            self.set_viewport(Some(size)).await;
            let png = self.png().await;
            std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        self.set_viewport(None).await;
        [desktop, phone]
    }

    /// Runs axe-core on the current page and returns every violation,
    /// printing them to stderr.
    pub async fn axe_violations(&self, page: &str) -> Vec<Violation> {
        let loaded = self
            .execute("return typeof window.axe !== 'undefined';", vec![])
            .await;
        if loaded != true {
            let source = std::fs::read_to_string(&self.axe_path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", self.axe_path.display()));
            self.execute(&source, vec![]).await;
        }
        let result = self
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then((r) => done({ violations: r.violations.map((v) => ({
                     id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                     targets: v.nodes.map((n) => n.target.join(' ')),
                   })) }))
                   .catch((e) => done({ error: String(e) }));",
                vec![],
            )
            .await;
        if let Some(error) = result["error"].as_str() {
            panic!("axe on {page}: {error}");
        }
        let violations: Vec<Violation> =
            serde_json::from_value(result["violations"].clone()).expect("axe's violations");
        for violation in &violations {
            eprintln!("axe on {page}: {violation}");
        }
        violations
    }

    /// Runs axe-core on the current page and fails on any "serious" or
    /// "critical" violation; returns the lesser ones.
    pub async fn axe(&self, page: &str) -> Vec<Violation> {
        let violations = self.axe_violations(page).await;
        let serious: Vec<String> = violations
            .iter()
            .filter(|v| v.is_serious())
            .map(ToString::to_string)
            .collect();
        assert!(
            serious.is_empty(),
            "axe found serious or critical violations on {page}:\n  {}",
            serious.join("\n  ")
        );
        violations
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub async fn click(&self) {
        self.browser.post(&self.path("/click"), json!({})).await;
    }

    /// Replaces the field's value by typing `value`.
    pub async fn fill(&self, value: &str) {
        self.browser.post(&self.path("/clear"), json!({})).await;
        self.browser
            .post(&self.path("/value"), json!({ "text": value }))
            .await;
    }

    /// Chooses a file for an `<input type="file">`, as a reader picking it
    /// in the dialogue would.
    pub async fn choose_file(&self, file: &Path) {
        self.browser
            .post(
                &self.path("/value"),
                json!({ "text": file.to_string_lossy() }),
            )
            .await;
    }

    pub async fn text(&self) -> String {
        self.browser
            .get(&self.path("/text"))
            .await
            .as_str()
            .expect("text")
            .to_owned()
    }

    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.browser
            .get(&self.path(&format!("/attribute/{name}")))
            .await
            .as_str()
            .map(str::to_owned)
    }
}

/// One WebDriver call: the `value` of the answer, or the driver's error.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let mut answer: Value = response.json().await.map_err(|e| e.to_string())?;
    let value = answer["value"].take();
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{status}: {} {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        ))
    }
}

#[tokio::test]
async fn unsubscribe_page_asks_then_unsubscribes_with_one_click() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start(
        "unsubscribe_page_asks_then_unsubscribes_with_one_click",
        &app,
    )
    .await
    else {
        return;
    };
    let email = "browser-unsubscribe@example.com";
    let welcome = app.confirmed_subscriber(email, 0).await;
    // The link names the configured public address; the path is the app's.
    let link = welcome.link_containing("/unsubscribe/");
    let path = &link[link.find("/unsubscribe/").expect("the path")..];

    browser.goto(path).await;
    assert_eq!(browser.current_path().await, path);
    let text = browser.text().await;
    assert!(text.contains(email), "the page names the address:\n{text}");
    assert!(
        browser.title().await.starts_with("Unsubscribe"),
        "{}",
        browser.title().await
    );
    assert_eq!(browser.find("h1").await.text().await, "Unsubscribe");
    assert_eq!(
        app.subscriber(email).expect("stored").status,
        SubscriberStatus::Confirmed,
        "opening the page must not unsubscribe"
    );
    browser.screenshot("unsubscribe-ask").await;
    browser.axe("the unsubscribe page").await;

    browser.click_button("Unsubscribe").await;
    let text = browser.wait_for_text("will get no more newsletters").await;
    assert!(
        text.contains(&format!("{email} will get no more newsletters")),
        "{text}"
    );
    assert_eq!(
        browser.current_path().await,
        path,
        "the form posts to the link"
    );
    let stored = app.subscriber(email).expect("stored");
    assert_eq!(stored.status, SubscriberStatus::Unsubscribed);
    assert!(stored.unsubscribed_at.is_some());
    browser.screenshot("unsubscribe-done").await;
    browser.axe("the unsubscribed page").await;
}

/// The helpers themselves, on a page of their own: fields found by label
/// (`for` and nested) and by name, a button by its text.
#[tokio::test]
async fn browser_helpers_fill_fields_and_press_buttons() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::start("browser_helpers_fill_fields_and_press_buttons", &app).await
    else {
        return;
    };
    let page = r#"<!DOCTYPE html><html lang="en"><head><title>Form</title></head><body><main>
        <form onsubmit="const d = new FormData(this);
          document.getElementById('out').textContent =
            [d.get('email'), d.get('company'), d.get('reason')].join('|');
          return false;">
        <label for="email">Email address</label> <input id="email" name="email" value="old">
        <label>Company <input name="company"></label>
        <textarea name="reason"></textarea>
        <button type="button">Cancel</button> <button type="submit">Sign up</button>
        </form><p id="out"></p></main></body></html>"#;
    let url = format!(
        "data:text/html;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(page)
    );
    browser.goto(&url).await;

    browser.fill_label("Email address", "ada@example.com").await;
    browser.fill_label("Company", "Analytical Engines").await;
    browser.fill_name("reason", "Following a case").await;
    assert_eq!(
        browser
            .find("#email")
            .await
            .attribute("name")
            .await
            .as_deref(),
        Some("email")
    );
    browser.click_button("Sign up").await;
    browser
        .wait_for_text("ada@example.com|Analytical Engines|Following a case")
        .await;
}
