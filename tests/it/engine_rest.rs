//! The official Python SDK's REST-backed public API against the embedded engine: runs (get, list,
//! create, cancel and replay by id and by filter), tasks, workers (pause/unpause), scheduled runs,
//! crons, filters, events, auth and the 501 for unsupported endpoints. The checks live in
//! `tests/python/rest_api.py`; this test runs its worker and its client.

use acf_tests::engine_support::rest_api_script;
use acf_tests::sdk_support;
use reqwest::Method;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_rest_calls_work_against_the_engine() {
    let engine = sdk_support::engine().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = rest_api_script(&engine, dir.path(), "worker", "rest-worker")
        .spawn(dir.path().join("worker.log"));
    let out = rest_api_script(&engine, dir.path(), "client", "rest-worker")
        .timeout(Duration::from_secs(150))
        .run_async()
        .await;
    if !out.success() {
        panic!(
            "rest_api.py client failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- worker log ---\n{}",
            out.status,
            out.stdout,
            out.stderr,
            worker.log()
        );
    }
    assert!(
        out.stdout.lines().any(|l| l == "OK"),
        "the client did not finish its checks:\n{}",
        out.stdout
    );
    engine.shutdown().await;
}

/// Error answers are Hatchet's `APIErrors` with the status codes of the spec, naming the field or
/// endpoint; the dashboard assets are served from the binary. No Python needed.
#[tokio::test]
async fn rest_errors_name_the_problem_and_the_dashboard_is_served() {
    let engine = sdk_support::engine().await;
    let http = reqwest::Client::new();
    let base = engine.server_url();
    let tenant = engine.tenant_id();
    let auth = format!("Bearer {}", engine.token());
    let call = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut req = http
            .request(method, format!("{base}{path}"))
            .header("authorization", &auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let json: serde_json::Value = resp.json().await.unwrap_or_default();
            (status, json)
        }
    };
    let description = |v: &serde_json::Value| {
        v["errors"][0]["description"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };

    let (status, body) = call(
        Method::GET,
        format!("/api/v1/stable/tenants/{tenant}/workflow-runs"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("since"), "{body}");

    let (status, body) = call(
        Method::GET,
        format!("/api/v1/stable/tenants/{tenant}/workflow-runs?since=2020-01-01T00:00:00Z&bogus=1"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("bogus"), "{body}");

    let (status, body) = call(
        Method::GET,
        format!(
            "/api/v1/stable/tenants/{tenant}/workflow-runs?since=2020-01-01T00:00:00Z&statuses=DONE"
        ),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("statuses"), "{body}");

    let other = uuid::Uuid::new_v4();
    let (status, _) = call(Method::GET, format!("/api/v1/tenants/{other}/worker"), None).await;
    assert_eq!(status, 403);

    let (status, body) = call(
        Method::POST,
        format!("/api/v1/tenants/{tenant}/workflows/Nope/crons"),
        Some(serde_json::json!({"input": {}, "additionalMetadata": {}, "cronName": "c", "cronExpression": "* * *"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("cronExpression"), "{body}");

    let (status, body) = call(
        Method::POST,
        format!("/api/v1/tenants/{tenant}/workflows/Nope/scheduled"),
        Some(serde_json::json!({"input": {}, "additionalMetadata": {}, "triggerAt": "2030-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(description(&body).contains("Nope"), "{body}");

    let (status, body) = call(
        Method::POST,
        format!("/api/v1/stable/tenants/{tenant}/tasks/cancel"),
        Some(serde_json::json!({"externalIds": [], "surprise": true})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(description(&body).contains("surprise"), "{body}");

    let (status, body) = call(
        Method::PATCH,
        format!("/api/v1/workers/{}", uuid::Uuid::new_v4()),
        Some(serde_json::json!({"isPaused": true})),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = call(
        Method::GET,
        format!("/api/v1/tenants/{tenant}/rate-limits"),
        None,
    )
    .await;
    assert_eq!(status, 501);
    assert!(description(&body).contains("/rate-limits"), "{body}");

    let page = http
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("acf engine"));
    let script = http
        .get(format!("{base}/dashboard/app.js"))
        .send()
        .await
        .expect("app.js");
    assert_eq!(script.status().as_u16(), 200);
    engine.shutdown().await;
}
