//! The engine's dashboard in a real headless Chromium driven over WebDriver (chromedriver, plain
//! HTTP): the page loads with the printed URL, a run triggered meanwhile appears and completes, its
//! DAG opens with each step's status, a step shows its output, and a screenshot is saved to
//! `target/test-artifacts/dashboard.png`.
//!
//! Chromium and chromedriver come from `scripts/ensure-chromium` (called by `scripts/test`); when
//! they are missing the test fails, it never skips.

use acf_tests::engine_support::rest_api_script;
use acf_tests::peer::Background;
use acf_tests::{sdk_support, workspace_root};
use base64::Engine as _;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const FIX: &str = "run `scripts/ensure-chromium` (apt-get install chromium chromium-driver)";

fn require(binary: &str) -> String {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(binary))
        .find(|p| p.is_file());
    match found {
        Some(p) => p.display().to_string(),
        None => {
            panic!("\n==== BROWSER TEST UNAVAILABLE ====\n`{binary}` is not on PATH.\nFix: {FIX}\n")
        }
    }
}

/// A minimal WebDriver client over HTTP.
struct Driver {
    http: reqwest::Client,
    base: String,
}

impl Driver {
    /// Sends one command; returns the HTTP status and the JSON reply.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("webdriver request");
        let status = resp.status();
        let value: Value = resp.json().await.expect("webdriver json");
        (status, value)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.send(method, path, body).await;
        assert!(status.is_success(), "webdriver {path}: {status} {value}");
        value["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn js(&self, script: &str) -> Value {
        self.driver
            .post(
                &format!("/session/{}/execute/sync", self.id),
                json!({ "script": script, "args": [] }),
            )
            .await
    }

    /// Clicks the element `css` selects. The live views re-render their rows as updates arrive,
    /// so an element found a moment ago may be gone by the time of the click ("stale element
    /// reference"): find it again and retry, as a user would click the row again.
    async fn click(&self, css: &str) {
        let mut attempts = 0;
        loop {
            let element = self
                .driver
                .post(
                    &format!("/session/{}/element", self.id),
                    json!({ "using": "css selector", "value": css }),
                )
                .await;
            let eid = element
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .expect("element id")
                .to_owned();
            let (status, value) = self
                .driver
                .send(
                    reqwest::Method::POST,
                    &format!("/session/{}/element/{eid}/click", self.id),
                    Some(json!({})),
                )
                .await;
            if status.is_success() {
                return;
            }
            attempts += 1;
            let stale = value["value"]["error"] == "stale element reference";
            assert!(
                stale && attempts < 10,
                "webdriver click on {css}: {status} {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls a script until it returns something truthy.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.js(script).await;
            let truthy = match &last {
                Value::Null | Value::Bool(false) => false,
                Value::Array(a) => !a.is_empty(),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("timed out waiting for {what}; last value: {last}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_run_completing_and_its_dag() {
    let chromium = require("chromium");
    let chromedriver = require("chromedriver");
    let engine = sdk_support::engine().await;
    let dir = tempfile::tempdir().expect("temp dir");

    // A Python SDK worker serving the RestDag workflow (start -> finish).
    let _worker = rest_api_script(&engine, dir.path(), "worker", "dashboard-worker")
        .spawn(dir.path().join("worker.log"));

    // chromedriver in its own process group.
    let port = free_port();
    let mut driver_cmd = Command::new(&chromedriver);
    driver_cmd.arg(format!("--port={port}"));
    let _chromedriver = Background::spawn(driver_cmd, None)
        .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}\nFix: {FIX}"));
    let driver = Driver {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let ready = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = driver
            .http
            .get(format!("{}/status", driver.base))
            .send()
            .await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < ready,
            "chromedriver did not become ready\nFix: {FIX}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let created = driver
        .post(
            "/session",
            json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--window-size=1500,1000",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                },
            }}}),
        )
        .await;
    let session = Session {
        driver: &driver,
        id: created["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned(),
    };
    driver
        .post(
            &format!("/session/{}/url", session.id),
            json!({ "url": engine.dashboard_url() }),
        )
        .await;
    session
        .wait_for(
            "the page to connect",
            "return document.getElementById('conn').textContent.startsWith('live') ? 'live' : null",
        )
        .await;
    let token_in_url = session.js("return location.href.includes('token=')").await;
    assert_eq!(
        token_in_url,
        json!(false),
        "the token is removed from the address bar"
    );

    // Trigger a run once the worker registered the workflow.
    let http = reqwest::Client::new();
    let tenant = engine.tenant_id();
    let base = engine.server_url();
    let auth = format!("Bearer {}", engine.token());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list: Value = http
            .get(format!("{base}/api/v1/tenants/{tenant}/workflows"))
            .header("authorization", &auth)
            .send()
            .await
            .expect("workflows list")
            .json()
            .await
            .expect("json");
        if list["rows"]
            .as_array()
            .is_some_and(|r| r.iter().any(|w| w["name"] == "RestDag"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Python worker never registered RestDag"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let details: Value = http
        .post(format!(
            "{base}/api/v1/stable/tenants/{tenant}/workflow-runs/trigger"
        ))
        .header("authorization", &auth)
        .json(&json!({ "workflowName": "RestDag", "input": {}, "additionalMetadata": {"from": "browser-test"} }))
        .send()
        .await
        .expect("trigger")
        .json()
        .await
        .expect("json");
    let run_id = details["run"]["metadata"]["id"]
        .as_str()
        .expect("run id")
        .to_owned();

    // The run appears in the live list and completes there.
    let row = format!("#runs-table tr[data-run-id='{run_id}']");
    session
        .wait_for(
            "the run to appear",
            &format!("return document.querySelector(\"{row}\") ? 'yes' : null"),
        )
        .await;
    session
        .wait_for(
            "the run to complete in the list",
            &format!(
                "const r = document.querySelector(\"{row}\"); \
                 return r && r.children[2].textContent === 'COMPLETED' ? 'done' : null"
            ),
        )
        .await;

    // Open the DAG: both steps, completed, linked by an edge.
    session.click(&row).await;
    let nodes = session
        .wait_for(
            "the DAG",
            "const n = [...document.querySelectorAll('#dag .dag-node')]; \
             return n.length === 2 && n.every(x => x.dataset.status === 'COMPLETED') \
               ? n.map(x => x.querySelector('text').textContent) : null",
        )
        .await;
    assert_eq!(nodes, json!(["start", "finish"]));
    let edges = session
        .js("return document.querySelectorAll('#dag .dag-edge').length")
        .await;
    assert_eq!(edges, json!(1));

    // A step's detail: status, attempt, output, events.
    let first_node = session
        .js("return document.querySelector('#dag .dag-node').dataset.task")
        .await;
    session
        .click(&format!(
            "#dag .dag-node[data-task='{}']",
            first_node.as_str().expect("task id")
        ))
        .await;
    let output = session
        .wait_for(
            "the step detail",
            "const d = document.getElementById('task-detail'); \
             return d.hidden ? null : document.getElementById('task-output').textContent",
        )
        .await;
    let output: Value = serde_json::from_str(output.as_str().expect("text")).expect("output json");
    assert_eq!(output, json!({"n": 1}));
    let events = session
        .js("return [...document.querySelectorAll('#task-events tbody tr')].map(r => r.children[1].textContent)")
        .await;
    let events: Vec<String> = serde_json::from_value(events).expect("event names");
    for kind in ["QUEUED", "ASSIGNED", "FINISHED"] {
        assert!(
            events.iter().any(|e| e == kind),
            "{kind} missing from {events:?}"
        );
    }

    let png = session
        .driver
        .get(&format!("/session/{}/screenshot", session.id))
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().expect("base64 screenshot"))
        .expect("png bytes");
    assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let out_dir = workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&out_dir).expect("artifact dir");
    std::fs::write(out_dir.join("dashboard.png"), &bytes).expect("screenshot written");

    // The workers tab lists the worker with its slots.
    session.click("#tab-workers").await;
    let worker_row = session
        .wait_for(
            "the worker row",
            "const r = document.querySelector('#workers-table tbody tr'); \
             return r ? [...r.children].map(c => c.textContent) : null",
        )
        .await;
    assert_eq!(worker_row[0], json!("dashboard-worker"));
    assert_eq!(worker_row[1], json!("ACTIVE"));
    assert_eq!(worker_row[2], json!("default: 10 / 10"));

    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{}", session.id),
            None,
        )
        .await;
    engine.shutdown().await;
}
