//! Exports that stop reading must not starve the service: they get a bounded share of the
//! pool, are abandoned after the send timeout, and ingest and health keep answering meanwhile.

use std::time::{Duration, Instant};

use airlog::auth::Scope;
use diesel::connection::SimpleConnection;
use tokio::io::AsyncWriteExt;

use crate::helpers::TestApp;

#[tokio::test]
async fn stalled_export_downloads_leave_ingest_and_health_answering() {
    let app = TestApp::spawn_with(|s| {
        s.database.pool_size = 4;
        s.server.max_exports = 2;
        s.server.export_send_timeout_s = 2;
        s.server.workers = 2;
    })
    .await;
    // About 25 MB of CSV: far more than socket buffers hold for a client that does not read.
    app.db
        .conn()
        .batch_execute(
            "INSERT INTO stats_stream_event (origin, ip, method, path, status, bytes_sent, user_agent, \
             seconds_connected, time_start, time_end, device_key) \
             SELECT 'hls', '10.0.0.1', 'GET', '/hls/live/index.m3u8', 200, i, repeat('Mozilla ', 20), 60, \
                    timestamptz '2024-11-05 00:00:00+00' + i * interval '1 second', \
                    timestamptz '2024-11-05 00:01:00+00' + i * interval '1 second', 'k' \
             FROM generate_series(1, 100000) AS i",
        )
        .unwrap();
    let read = app.token(&[Scope::Read]);
    let ingest = app.token(&[Scope::Ingest]);
    let addr = app.address.trim_start_matches("http://").to_string();

    // Ten downloads that never read a byte of the answer.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "GET /api/v1/stats/stream-events/export.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Token {read}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Ingest and health answer at once, several times over.
    let event = serde_json::json!([{"origin":"hls","ip":"10.0.0.9","method":"GET","path":"/hls/a.m3u8",
        "status":200,"bytes_sent":1,"user_agent":"u","referer":"","time_start":"2024-11-06T10:00:00Z",
        "time_end":"2024-11-06T10:01:00Z","seconds_connected":60}]);
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = app
            .post_json("/api/v1/stats/ingest/stream-events/", &ingest, &event)
            .await;
        assert_eq!(status, 201, "{body}");
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200, "{}", health.text().await.unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // Past the send timeout the stalled exports give their connections back: a new export
    // runs, whole.
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(stalled);
    let (status, csv) = app
        .get_text("/api/v1/stats/stream-events/export.csv", &read)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        csv.lines().count(),
        1 + 100_000 + 1,
        "header, rows, the ingested one"
    );
    app.stop().await;
}

#[tokio::test]
async fn health_tells_a_busy_pool_from_a_dead_database() {
    let db = crate::helpers::TestDb::new();
    let mut settings = crate::helpers::settings_for(&db);
    settings.database.pool_size = 2;
    settings.database.connect_timeout_s = 1;
    settings.server.max_exports = 1;
    let app = airlog::app::Application::build(settings, &db.url).unwrap();
    let state = app.state();
    assert!(airlog::api::health::probe(&state).await.is_ok());
    // Every pooled connection held (as stalled exports and slow requests did).
    let pool = state.pool.clone();
    let held = tokio::task::spawn_blocking(move || {
        (0..2).map(|_| pool.get().unwrap()).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let busy = airlog::api::health::probe(&state)
        .await
        .unwrap_err()
        .to_string();
    assert!(busy.contains("busy") && busy.contains("answers"), "{busy}");
    drop(held);
    assert!(airlog::api::health::probe(&state).await.is_ok());
}
