use airlog::db::cluster::Cluster;
use reqwest::Method;

use crate::helpers::{json_of, private_temp_dir, test_settings, Running, TestApp, FAST_CONF};

#[tokio::test]
async fn healthz_answers_200_after_a_database_round_trip() {
    let app = TestApp::spawn().await;
    let (status, body) = json_of(app.request(Method::GET, "/healthz", None)).await;
    assert_eq!(status, 200);
    assert_eq!(body["database"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn healthz_answers_503_while_the_database_is_down_and_recovers() {
    let dir = private_temp_dir("airlog-health");
    let cluster = Cluster::new(dir.join("pg"))
        .unwrap()
        .with_extra_conf(FAST_CONF);
    cluster.start().unwrap();
    airlog::db::migrate(&cluster.url()).unwrap();
    let mut settings = test_settings();
    settings.database.url = cluster.url();
    let running = Running::start(settings);
    let url = format!("http://127.0.0.1:{}/healthz", running.port);
    let client = reqwest::Client::new();

    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .unwrap()
        .unwrap();
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("database"),
        "{body}"
    );

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    running.stop().await;
    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    app.client
        .get(app.url("/api/v1/tokens/"))
        .send()
        .await
        .unwrap();
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"airlog_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/tokens/",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"airlog_db_pool_connections{state="max"}"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let app = TestApp::spawn().await;
    let (status, body) = json_of(app.request(Method::GET, "/api/v1/nothing-here", None)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    assert!(body["details"].is_array());
    app.stop().await;
}
