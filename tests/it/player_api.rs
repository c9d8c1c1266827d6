use std::time::Duration;

use airlog::auth::Scope;
use airlog::jobs::{self, Trigger, Window};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{airlog_cmd, error_fields, json_of, private_temp_dir, utc as t, TestApp};
use crate::player_jobs::add;

const BROWSER: &str = "/api/v1/stats/ingest/player-events/";

/// A browser's PUT of player events: no token, these headers.
async fn put(app: &TestApp, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app.request(Method::PUT, BROWSER, None).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    json_of(req).await
}

#[tokio::test]
async fn browsers_post_events_without_a_token_and_retries_are_not_counted_twice() {
    let app = TestApp::spawn().await;
    let read = app.token(&[Scope::Read]);
    let body = json!({"events": [
        {"objKey": "catalog.media:A1", "source": "on-demand", "state": "playing", "ts": 1730805332123u64, "duration": 200},
        {"objKey": "catalog.media:A1", "source": "on-demand", "state": "paused", "ts": 1730805392000u64},
    ]});
    let ua = [("User-Agent", "Firefox/120"), ("Accept-Language", "de-CH")];
    assert_eq!(
        put(&app, body.clone(), &ua).await,
        (201, json!({"created": 2, "duplicates": 0}))
    );
    assert_eq!(
        put(&app, body, &ua).await,
        (201, json!({"created": 0, "duplicates": 2}))
    );

    let events = app.get_ok("/api/v1/stats/player-events/", &read).await;
    let rows = events["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let key = airlog::domain::stream_event::device_key(
        &"127.0.0.1".parse().unwrap(),
        "Firefox/120|de-CH",
    );
    assert_eq!(rows[0]["deviceKey"], key);
    assert_eq!(rows[0]["userIdentity"], format!("anonymous:{key}"));
    assert_eq!(rows[0]["maxDurationS"], 200.0);
    assert_eq!(rows[0]["clientTs"], "2024-11-05T11:15:32.123Z");
    assert!(
        rows[0]["time"].as_str().unwrap() < rows[1]["time"].as_str().unwrap(),
        "server time keeps their order"
    );

    let (status, body) = put(
        &app,
        json!({"events": [{"objKey": "x", "source": "tv", "state": "playing"}]}),
        &[],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["details"][0]["field"], "source");
    app.stop().await;
}

#[tokio::test]
async fn max_duration_comes_from_the_catalogue_when_the_event_has_none() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let media = json!([{"objKey": "catalog.media:B2", "duration": 245.5, "title": "Morning show"}]);
    let (status, body) = app.put_json("/api/v1/catalog/media/", &admin, &media).await;
    assert_eq!(status, 200, "{body}");
    put(&app, json!({"events": [{"objKey": "catalog.media:B2", "source": "on-demand", "state": "playing"}]}), &[]).await;
    let events = app.get_ok("/api/v1/stats/player-events/", &admin).await;
    assert_eq!(events["results"][0]["maxDurationS"], 245.5);
    app.stop().await;
}

#[tokio::test]
async fn trusted_proxies_give_the_client_address_and_the_signed_in_user() {
    let app = TestApp::spawn_with(|s| {
        s.player.trusted_proxies = vec!["127.0.0.1".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        s.player.identity_header = "X-Airlog-User".into();
    })
    .await;
    let read = app.token(&[Scope::Read]);
    // The client wrote the first entry itself; the proxies appended the rest: the right-most
    // address that is not a trusted proxy is the client.
    let headers = [
        ("X-Forwarded-For", "198.51.100.66, 203.0.113.7, 10.0.0.1"),
        ("X-Airlog-User", "D34C5A0A"),
        ("User-Agent", "Safari"),
    ];
    put(
        &app,
        json!({"events": [{"objKey": "k", "source": "live", "state": "playing"}]}),
        &headers,
    )
    .await;
    let events = app.get_ok("/api/v1/stats/player-events/", &read).await;
    let key = airlog::domain::stream_event::device_key(&"203.0.113.7".parse().unwrap(), "Safari");
    assert_eq!(events["results"][0]["deviceKey"], key);
    assert_eq!(
        events["results"][0]["userIdentity"],
        "account.user:D34C5A0A"
    );

    let now = app.get_ok("/api/v1/stats/listeners/now", &read).await;
    assert_eq!(now["total"], 1);
    assert_eq!(now["bySource"]["live"], 1);
    // A heartbeat from another device on another source, then a stop from the first.
    let heartbeat = app
        .request(Method::PUT, "/api/v1/stats/heartbeat/", None)
        .json(&json!({"source": "news"}));
    assert_eq!(json_of(heartbeat).await.0, 204);
    put(
        &app,
        json!({"events": [{"objKey": "k", "source": "live", "state": "stopped"}]}),
        &headers,
    )
    .await;
    let now = app.get_ok("/api/v1/stats/listeners/now", &read).await;
    assert_eq!(now["bySource"], json!({"news": 1}));
    app.stop().await;
}

#[tokio::test]
async fn cors_admits_only_configured_origins_and_devices_are_rate_limited() {
    let app = TestApp::spawn_with(|s| {
        s.player.allowed_origins = vec!["https://radio.example".into()];
        s.player.rate_limit_per_minute = 60;
    })
    .await;
    let preflight = app
        .request(Method::OPTIONS, BROWSER, None)
        .header("Origin", "https://radio.example")
        .header("Access-Control-Request-Method", "PUT")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://radio.example"
    );

    let event = json!({"events": [{"objKey": "k", "source": "live", "state": "playing"}]});
    let (status, _) = put(&app, event.clone(), &[("Origin", "https://evil.example")]).await;
    assert_eq!(status, 403, "other origins are refused");

    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            put(
                &app,
                event.clone(),
                &[("Origin", "https://radio.example"), ("User-Agent", "burst")],
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses[..6], [201; 6]);
    assert_eq!(statuses[6..], [429, 429]);
    // The limit is per address: another user agent from the same address does not get round it.
    let res = app
        .request(Method::PUT, BROWSER, None)
        .header("User-Agent", "another device")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the limit is per address");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    app.stop().await;
}

#[tokio::test]
async fn jobs_run_on_demand_and_on_schedule_and_are_listed() {
    let app = TestApp::spawn_with(|s| {
        s.jobs.enabled = true;
        s.jobs.interval_s = 1;
    })
    .await;
    let admin = app.admin_token();
    let read = app.token(&[Scope::Read]);
    let run = |job: &str| {
        json_of(app.request(
            Method::POST,
            &format!("/api/v1/jobs/{job}/run"),
            Some(&admin),
        ))
    };
    let (status, body) = run("all").await;
    assert_eq!(status, 200, "{body}");
    // The four player-event jobs, then the audience rollups.
    assert_eq!(body["results"].as_array().unwrap().len(), 5);
    assert_eq!(body["results"][4]["job"], "audience");
    assert_eq!(app.get_json("/api/v1/jobs/", &read).await.0, 403);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs = app.get_ok("/api/v1/jobs/?limit=1000", &admin).await;
    let runs = runs["results"].as_array().unwrap();
    assert!(runs
        .iter()
        .any(|r| r["trigger"] == "api" && r["name"] == "sessions"));
    assert!(
        runs.iter().any(|r| r["trigger"] == "schedule"),
        "the scheduler ran: {runs:?}"
    );
    assert!(runs
        .iter()
        .all(|r| r["error"].is_null() || r["error"].as_str().unwrap().starts_with("skipped")));
    assert_eq!(run("nope").await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn sessions_are_listed_with_filters() {
    let app = TestApp::spawn().await;
    let read = app.token(&[Scope::Read]);
    let mut c = app.db.conn();
    let d = airlog::domain::stream_event::device_key(&"10.9.0.1".parse().unwrap(), "x");
    add(
        &mut c,
        &d,
        t("2024-05-01T10:00:00Z"),
        "playing",
        Some(120.0),
        "live",
    );
    add(
        &mut c,
        &d,
        t("2024-05-01T10:02:00Z"),
        "playing",
        Some(60.0),
        "on-demand",
    );
    add(
        &mut c,
        &d,
        t("2024-05-01T12:00:00Z"),
        "playing",
        Some(50.0),
        "live",
    );
    add(
        &mut c,
        &d,
        t("2024-05-01T12:00:50Z"),
        "stopped",
        None,
        "live",
    );
    let settings = airlog::config::JobSettings::default();
    let window = Window {
        start: t("2024-05-01T00:00:00Z"),
        end: t("2024-05-02T00:00:00Z"),
    };
    jobs::run_all(
        &mut c,
        window,
        t("2024-05-02T00:00:00Z"),
        &settings,
        Trigger::Cli,
    )
    .unwrap();

    let all = app.get_ok("/api/v1/stats/sessions/", &read).await;
    assert_eq!(all["count"], 2);
    let first = &all["results"][0];
    assert_eq!(first["timeStart"], "2024-05-01T10:00:00Z");
    assert_eq!(first["durationPlayingS"], 180.0);
    assert_eq!(first["durationPlayingLiveS"], 120.0);
    assert_eq!(first["durationPlayingOndemandS"], 60.0);
    assert_eq!(first["remoteAddr"], "10.9.0.1");
    assert_eq!(
        app.get_ok("/api/v1/stats/sessions/?min_duration=100", &read)
            .await["count"],
        1
    );
    assert_eq!(
        app.get_ok("/api/v1/stats/sessions/?source=on-demand", &read)
            .await["count"],
        1
    );
    assert_eq!(
        app.get_ok(
            "/api/v1/stats/sessions/?time_from=2024-05-01T11:00:00Z",
            &read
        )
        .await["count"],
        1
    );
    let paged = app.get_ok("/api/v1/stats/sessions/?limit=1", &read).await;
    let next = paged["next"].as_str().unwrap();
    let page2 = app.get_ok(next, &read).await;
    assert_eq!(page2["results"][0]["timeStart"], "2024-05-01T12:00:00Z");
    assert_eq!(
        app.get_ok("/api/v1/stats/player-events/?source=on-demand", &read)
            .await["count"],
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn backfill_walks_broadcast_days_in_station_time_across_dst() {
    let app = TestApp::spawn().await;
    let dir = private_temp_dir("airlog-backfill");
    let mut c = app.db.conn();
    let d = airlog::domain::stream_event::device_key(&"10.9.1.1".parse().unwrap(), "x");
    add(
        &mut c,
        &d,
        t("2024-03-30T12:00:00Z"),
        "playing",
        Some(100.0),
        "live",
    );
    add(
        &mut c,
        &d,
        t("2024-03-31T12:00:00Z"),
        "playing",
        Some(100.0),
        "live",
    );
    let env = [
        ("DATABASE_URL", app.db.url.as_str()),
        ("AIRLOG_STATION__TIME_ZONE", "Europe/Zurich"),
    ];
    let (code, stdout, stderr) = airlog_cmd(
        &[
            "jobs",
            "backfill",
            "--from",
            "2024-03-30",
            "--to",
            "2024-03-31",
        ],
        &env,
        &dir,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 events changed"), "{stdout}");

    #[derive(QueryableByName)]
    struct W {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        window_start: DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::Double)]
        hours: f64,
    }
    let windows: Vec<W> = diesel::sql_query(
        "SELECT window_start, extract(epoch FROM window_end - window_start)::float8 / 3600 - 4 AS hours \
         FROM job_run WHERE name = 'close-by-next-event' ORDER BY window_start",
    )
    .load(&mut c)
    .unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(
        windows[0].window_start,
        t("2024-03-30T03:00:00Z"),
        "04:00 CET"
    );
    assert_eq!(windows[0].hours, 23.0, "the day the clocks go forward");
    assert_eq!(
        windows[1].window_start,
        t("2024-03-31T02:00:00Z"),
        "04:00 CEST"
    );
    assert_eq!(windows[1].hours, 24.0);
    app.stop().await;
}

#[tokio::test]
async fn trusted_ingest_takes_explicit_times_once_and_needs_the_ingest_scope() {
    let app = TestApp::spawn().await;
    let ingest = app.token(&[Scope::Ingest]);
    let read = app.token(&[Scope::Read]);
    let key = airlog::domain::stream_event::device_key(&"192.0.2.44".parse().unwrap(), "Sonos");
    let batch = json!([
        {"time": "2024-05-01 10:00:00+00:00", "state": "playing", "objKey": "catalog.media:C3", "source": "on-demand",
         "user_identity": "account.user:77", "device_key": key, "max_duration": 300},
        {"time": "2024-05-01T10:03:00Z", "time_end": "2024-05-01T10:04:00Z", "state": "paused", "objKey": "catalog.media:C3",
         "source": "on-demand", "user_identity": "account.user:77", "device_key": key},
    ]);
    let url = "/api/v1/stats/ingest/player-events/trusted/";
    assert_eq!(app.post_json(url, &read, &batch).await.0, 403);
    assert_eq!(
        app.post_json(url, &ingest, &batch).await,
        (201, json!({"created": 2, "duplicates": 0}))
    );
    assert_eq!(
        app.post_json(url, &ingest, &batch).await,
        (201, json!({"created": 0, "duplicates": 2}))
    );
    let (status, body) = app
        .post_json(
            url,
            &ingest,
            &json!([{"time": "2024-05-01 10:00:00", "state": "playing", "objKey": "k", "source": "live",
            "user_identity": "account.user:77", "device_key": "not-a-key"}]),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_fields(&body), ["time", "device_key"]);

    let events = app
        .get_ok(
            "/api/v1/stats/player-events/?user_identity=account.user:77",
            &read,
        )
        .await;
    assert_eq!(events["count"], 2);
    assert_eq!(events["results"][1]["closedBy"], "client");
    assert_eq!(events["results"][1]["calculatedDurationS"], 60.0);
    app.stop().await;
}
