//! The committed bad-input corpus (`tests/corpus/bad_inputs.json`): values PostgreSQL would
//! refuse (NUL, times out of range, text too long for an index, duplicates inside one request,
//! numbers out of range) sent to every kind of endpoint. Each must get a 4xx in the API's error
//! shape naming the field, never a 5xx; and what was accepted before stays readable.

use airlog::auth::Scope;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{json_of, TestApp};

#[derive(serde::Deserialize)]
struct Case {
    class: String,
    name: String,
    method: String,
    path: String,
    auth: String,
    body: Option<Value>,
    raw: Option<String>,
    field: Option<String>,
}

/// `[i].field` for a detail with an index, else its field.
fn rendered(d: &Value) -> String {
    let field = d["field"].as_str().unwrap_or_default();
    match d["index"].as_u64() {
        Some(i) => format!("[{i}].{field}"),
        None => field.to_string(),
    }
}

#[tokio::test]
async fn every_bad_input_of_the_corpus_gets_a_4xx_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let cases: Vec<Case> = serde_json::from_str(include_str!("../corpus/bad_inputs.json")).unwrap();
    let mut failures = Vec::new();
    for case in &cases {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let token = (case.auth == "admin").then_some(admin.as_str());
        let mut req = app.request(method, &case.path, token);
        if let Some(body) = &case.body {
            req = req.json(body);
        } else if let Some(raw) = &case.raw {
            req = req
                .header("Content-Type", "application/json")
                .body(raw.clone());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let what = format!("{} / {}: {status} {text:.300}", case.class, case.name);
        if !(400..500).contains(&status) {
            failures.push(format!("not a 4xx: {what}"));
            continue;
        }
        if !(body["error"].is_string() && body["message"].is_string() && body["details"].is_array())
        {
            failures.push(format!("not the error shape: {what}"));
            continue;
        }
        if let Some(field) = &case.field {
            let named = body["details"].as_array().unwrap().iter().any(|d| {
                let r = rendered(d);
                r == *field || r.ends_with(field.as_str()) || field.ends_with(r.as_str())
            });
            if status != 400 || !named {
                failures.push(format!("400 naming {field:?} expected: {what}"));
            }
        }
    }
    // The service is still whole: health answers and a good batch is stored.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    app.stop().await;
}

async fn shape_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"));
    assert!(
        body["error"].is_string() && body["message"].is_string() && body["details"].is_array(),
        "{status}: {body}"
    );
    (status, body)
}

#[tokio::test]
async fn answers_from_the_router_and_middleware_are_in_the_error_shape() {
    let app = TestApp::spawn_with(|s| {
        s.player.allowed_origins = vec!["https://radio.example".into()];
    })
    .await;
    let admin = app.admin_token();
    let c = &app.client;
    // An id that is not a number, a method a route does not have, an unknown path.
    let res = app
        .request(Method::GET, "/api/v1/items/abc/history", Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(shape_of(res).await.0, 404);
    let res = c
        .delete(app.url("/api/v1/stats/ingest/player-events/"))
        .send()
        .await
        .unwrap();
    let (status, body) = shape_of(res).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let res = c.delete(app.url("/api/v1/stations/")).send().await.unwrap();
    assert!((400..500).contains(&shape_of(res).await.0));
    assert_eq!(
        shape_of(c.get(app.url("/nope")).send().await.unwrap())
            .await
            .0,
        404
    );
    // A preflight from an origin that is not allowed.
    let res = c
        .request(
            reqwest::Method::OPTIONS,
            app.url("/api/v1/stats/ingest/player-events/"),
        )
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "PUT")
        .send()
        .await
        .unwrap();
    let (status, _) = shape_of(res).await;
    assert!((400..500).contains(&status), "{status}");
    // A heartbeat with a broken body is refused, not taken as a heartbeat.
    let res = c
        .put(app.url("/api/v1/stats/heartbeat/"))
        .header("Content-Type", "application/json")
        .body("{\"source\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(shape_of(res).await.0, 400);
    let res = c
        .put(app.url("/api/v1/stats/heartbeat/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "no body is still a heartbeat");
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_and_the_service_keeps_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|s| s.server.body_timeout_s = 1).await;
    let token = app.token(&[Scope::Ingest]);
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/stats/ingest/stream-events/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"origin\""
        );
        s.write_all(head.as_bytes()).await.unwrap();
        stalled.push(s);
    }
    // Meanwhile the service answers.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let started = std::time::Instant::now();
    for mut s in stalled {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            s.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("\"request_timeout\""), "{text}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    app.stop().await;
}

#[tokio::test]
async fn links_believe_forwarded_headers_only_from_trusted_proxies() {
    let app = TestApp::spawn().await;
    let read = app.token(&[Scope::Read]);
    // A page read through a proxy that is not trusted.
    let page = || {
        app.request(
            Method::GET,
            "/api/v1/stats/stream-events/?limit=1",
            Some(&read),
        )
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "javascript")
        .header("Host", "stats.example.org:8080")
    };
    assert_eq!(json_of(page()).await.0, 200);
    let ingest = app.token(&[Scope::Ingest]);
    let ev = |s: u32| {
        serde_json::json!({"origin":"hls","ip":"10.0.0.1","method":"GET","path":"/hls/a.m3u8","status":200,
            "bytes_sent":1,"user_agent":"u","referer":"","time_start":format!("2024-11-05T11:15:{s:02}Z"),
            "time_end":format!("2024-11-05T11:16:{s:02}Z"),"seconds_connected":60})
    };
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/stream-events/",
            &ingest,
            &serde_json::json!([ev(1), ev(2)]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, page) = json_of(page()).await;
    assert_eq!(status, 200, "{page}");
    let next = page["next"].as_str().unwrap();
    assert!(
        next.starts_with("http://stats.example.org:8080/api/v1/stats/stream-events/?"),
        "{next}"
    );
    app.stop().await;
}
