//! Outgoing webhooks against a real receiver on 127.0.0.1 that fails, hangs, paces with 429
//! and recovers: every event arrives at least once, in order per endpoint, signed; a burst is
//! delivered or coalesced, never dropped; a `kill -9` between the log entry and its delivery
//! loses nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use airlog::config::Settings;
use airlog::db::playout::{self, NewLog, NewSound, NewTrack};
use airlog::domain::playout::LogType;
use chrono::Utc;
use diesel::{PgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{
    airlog_serve, free_port, private_temp_dir, station_row, token_in, TestApp, TestDb,
};

/// What the receiver does with the next request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Ok,
    Status(u16),
    /// 429 with `Retry-After: n`.
    TooMany(u64),
    /// Answers nothing for this long (beyond the client's timeout).
    Hang(Duration),
}

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    path: String,
    event: String,
    delivery: String,
    signature: String,
    body: Vec<u8>,
    /// Whether it was answered 2xx.
    accepted: bool,
    /// Whether it was answered 429.
    paced: bool,
}

#[derive(Default)]
struct Script {
    /// Replies for the next requests, in order; `Ok` once used up.
    next: VecDeque<Reply>,
    /// Extra time each path takes to answer (a slow receiver).
    slow: HashMap<String, Duration>,
    got: Vec<Got>,
}

/// A webhook receiver on 127.0.0.1.
struct Receiver {
    port: u16,
    script: Arc<Mutex<Script>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    script: web::Data<Mutex<Script>>,
) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (reply, slow) = {
        let mut s = script.lock().unwrap();
        (
            s.next.pop_front().unwrap_or(Reply::Ok),
            s.slow.get(req.path()).copied(),
        )
    };
    if let Reply::Hang(d) = reply {
        tokio::time::sleep(d).await;
    }
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    let got = Got {
        at: Instant::now(),
        path: req.path().to_string(),
        event: header("X-Airlog-Event"),
        delivery: header("X-Airlog-Delivery"),
        signature: header("X-Airlog-Signature"),
        body: body.to_vec(),
        accepted: matches!(reply, Reply::Ok),
        paced: matches!(reply, Reply::TooMany(_)),
    };
    script.lock().unwrap().got.push(got);
    match reply {
        Reply::Ok => HttpResponse::Ok().body("thanks"),
        Reply::Status(s) => HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap())
            .body("receiver trouble"),
        Reply::TooMany(s) => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", s.to_string()))
            .body("slow down"),
        Reply::Hang(_) => HttpResponse::Ok().body("too late"),
    }
}

impl Receiver {
    async fn start(port: u16) -> Receiver {
        let script = Arc::new(Mutex::new(Script::default()));
        let data = web::Data::from(script.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", port))
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            port,
            script,
            handle,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn script(&self, replies: &[Reply]) {
        self.script
            .lock()
            .unwrap()
            .next
            .extend(replies.iter().copied());
    }

    fn slow(&self, path: &str, d: Duration) {
        self.script.lock().unwrap().slow.insert(path.into(), d);
    }

    fn got(&self) -> Vec<Got> {
        self.script.lock().unwrap().got.clone()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Settings that retry fast and let the receiver on 127.0.0.1 through.
fn quick(s: &mut Settings) {
    s.webhooks.allow_private = true;
    s.webhooks.poll_ms = 50;
    s.webhooks.timeout_ms = 1000;
    s.webhooks.initial_backoff_ms = 100;
    s.webhooks.max_backoff_s = 1;
    s.webhooks.failing_after = 2;
}

/// The signature a receiver computes itself.
fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A station with one sound of `tracks` tracks; (station id, sound id, track ids).
fn catalogue(conn: &mut PgConnection, tracks: usize) -> (i64, i64, Vec<i64>) {
    let station =
        playout::upsert_station(conn, &station_row("hookradio", "none", String::new())).unwrap();
    let sound = playout::upsert_sound(
        conn,
        &NewSound {
            path: "/music/mix.mp3".into(),
            duration_s: Some(3600.0),
            title: "The Mix".into(),
            artist: "DJ".into(),
            r#type: "other".into(),
            program: String::new(),
            tracks: (0..tracks)
                .map(|i| NewTrack {
                    timestamp_s: i as f64 * 30.0,
                    artist: format!("Artist {i}"),
                    title: format!("Song {i}"),
                    ..NewTrack::default()
                })
                .collect(),
            ..NewSound::default()
        },
    )
    .unwrap();
    let ids = sound
        .tracks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    (station.id, sound.id, ids)
}

/// Logs the sound on air, then tracks `from..to` of it, as the monitor does; the entries' ids.
fn log_entries(conn: &mut PgConnection, station: i64, sound: i64, tracks: &[i64]) -> Vec<i64> {
    let start = Utc::now();
    let play = playout::insert_log(
        conn,
        &NewLog {
            station_id: station,
            r#type: LogType::OnAir,
            date: start,
            source: "test",
            path: Some("/music/mix.mp3"),
            sound_id: Some(sound),
            tags: json!({}),
            ..NewLog::default()
        },
    )
    .unwrap()
    .unwrap();
    let mut ids = vec![play];
    for (i, t) in tracks.iter().enumerate() {
        ids.push(log_track(
            conn,
            station,
            sound,
            play,
            *t,
            start + chrono::Duration::seconds(i as i64 + 1),
        ));
    }
    ids
}

fn log_track(
    conn: &mut PgConnection,
    station: i64,
    sound: i64,
    play: i64,
    track: i64,
    at: chrono::DateTime<Utc>,
) -> i64 {
    playout::insert_log(
        conn,
        &NewLog {
            station_id: station,
            r#type: LogType::OnAir,
            date: at,
            source: "test",
            sound_id: Some(sound),
            track_id: Some(track),
            parent_id: Some(play),
            tags: json!({}),
            date_from: Some("track_timestamp"),
            ..NewLog::default()
        },
    )
    .unwrap()
    .unwrap()
}

async fn create(app_url: &str, token: &str, body: &Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{app_url}/api/v1/webhooks/"))
        .header("Authorization", format!("Token {token}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// Every delivery of an endpoint (oldest first), from the API.
async fn deliveries(app: &TestApp, token: &str, endpoint: i64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before = String::new();
    loop {
        let page = app
            .get_ok(
                &format!("/api/v1/webhooks/{endpoint}/deliveries?limit=1000{before}"),
                token,
            )
            .await;
        let rows = page["results"].as_array().unwrap().clone();
        if rows.is_empty() {
            break;
        }
        before = format!("&before={}", rows.last().unwrap()["id"]);
        all.extend(rows);
    }
    all.reverse();
    all
}

/// Waits until no delivery of the endpoint is pending.
async fn settled(app: &TestApp, token: &str, endpoint: i64, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let rows = deliveries(app, token, endpoint).await;
        if rows.iter().all(|d| d["status"] != "pending") {
            return rows;
        }
        assert!(
            started.elapsed() < within,
            "still pending after {within:?}: {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The log entry ids of accepted generic bodies, in arrival order.
fn entries_of(got: &[Got], path: &str) -> Vec<i64> {
    got.iter()
        .filter(|g| g.accepted && g.path == path)
        .map(|g| {
            serde_json::from_slice::<Value>(&g.body).unwrap()["entry"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn every_event_arrives_signed_and_in_order_through_failures_hangs_and_429() {
    let app = TestApp::spawn_with(quick).await;
    let token = app.admin_token();
    let receiver = Receiver::start(free_port()).await;
    // 500, 500 (the endpoint turns failing), a hang past the 1 s timeout, 429 for 1 s, then fine.
    receiver.script(&[
        Reply::Status(500),
        Reply::Status(500),
        Reply::Hang(Duration::from_millis(1500)),
        Reply::TooMany(1),
    ]);
    let endpoint = create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/hook"), "events": ["on_air", "track"], "secret": "s3cret"}),
    )
    .await;
    let id = endpoint["id"].as_i64().unwrap();
    assert_eq!(endpoint["secret"], "s3cret", "shown once, on creation");
    let mut conn = app.db.conn();
    let (station, sound, tracks) = catalogue(&mut conn, 5);
    let logged = log_entries(&mut conn, station, sound, &tracks);

    // While it fails, the endpoint is shown failing with its last error.
    let started = Instant::now();
    loop {
        let e = app.get_ok(&format!("/api/v1/webhooks/{id}"), &token).await;
        if e["state"] == "failing" {
            assert!(e["last_error"].as_str().unwrap().contains("500"), "{e}");
            assert!(e.get("secret").is_none(), "never shown again: {e}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never failing: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let rows = settled(&app, &token, id, Duration::from_secs(20)).await;
    assert_eq!(rows.len(), logged.len());
    assert!(rows.iter().all(|d| d["status"] == "delivered"), "{rows:#?}");
    assert_eq!(
        rows[0]["attempts"], 5,
        "500, 500, timeout, 429, then 200: {:#}",
        rows[0]
    );
    assert_eq!(rows[0]["response_status"], 200);
    assert_eq!(rows[0]["response_excerpt"], "thanks");
    // The first delivery's history: every attempt, with its answer or why it failed.
    let detail = app
        .get_ok(
            &format!("/api/v1/webhooks/{id}/deliveries/{}", rows[0]["id"]),
            &token,
        )
        .await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(
        log.iter()
            .map(|a| a["response_status"].as_i64())
            .collect::<Vec<_>>(),
        [Some(500), Some(500), None, Some(429), Some(200)],
        "{detail:#}"
    );
    assert!(
        log[2]["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1000 ms"),
        "{detail:#}"
    );
    assert_eq!(log[3]["response_excerpt"], "slow down");
    assert_eq!(log[4]["error"], Value::Null);
    let e = app.get_ok(&format!("/api/v1/webhooks/{id}"), &token).await;
    assert_eq!(
        (e["state"].as_str(), e["consecutive_failures"].as_i64()),
        (Some("ok"), Some(0))
    );

    let got = receiver.got();
    // Each entry arrived (at least once), in the order it was logged.
    let mut arrived = entries_of(&got, "/hook");
    arrived.dedup();
    assert_eq!(arrived, logged);
    for g in &got {
        assert_eq!(
            g.signature,
            hmac_hex("s3cret", &g.body),
            "signed body of {}",
            g.delivery
        );
        let body: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(body["event"], g.event.as_str());
        assert_eq!(body["delivery"], g.delivery.as_str());
    }
    let first_track: Value =
        serde_json::from_slice(&got.iter().rfind(|g| g.event == "track").unwrap().body).unwrap();
    assert_eq!(first_track["now_playing"]["title"], "Song 4");
    assert_eq!(first_track["now_playing"]["artist"], "Artist 4");
    assert_eq!(first_track["station"], "hookradio");
    // The 429 asked for a second: the next attempt waited for it.
    let tries: Vec<&Got> = got
        .iter()
        .filter(|g| g.delivery == got[0].delivery)
        .collect();
    assert_eq!(
        tries.len(),
        5,
        "one delivery id for every attempt of the first entry"
    );
    // The 429 asked for a second: the next attempt waited for it (the hung attempt's record
    // comes later, when its handler wakes).
    let paced = tries.iter().find(|g| g.paced).expect("a 429");
    let accepted = tries.iter().find(|g| g.accepted).expect("delivered");
    let waited = accepted.at.duration_since(paced.at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured ({waited:?})"
    );
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_100_track_changes_is_delivered_or_coalesced_never_dropped() {
    let app = TestApp::spawn_with(quick).await;
    let token = app.admin_token();
    let receiver = Receiver::start(free_port()).await;
    // Discord answers slowly: a backlog forms, and it gets the latest song, not every one.
    receiver.slow("/discord", Duration::from_millis(700));
    let generic = create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/generic"), "events": ["track"]}),
    )
    .await;
    let discord = create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/discord"), "events": ["track"], "preset": "discord"}),
    )
    .await;
    let mut conn = app.db.conn();
    let (station, sound, tracks) = catalogue(&mut conn, 100);
    let play = log_entries(&mut conn, station, sound, &[])[0];
    let start = Utc::now();
    let mut logged = Vec::new();
    for (i, t) in tracks.iter().enumerate() {
        logged.push(log_track(
            &mut conn,
            station,
            sound,
            play,
            *t,
            start + chrono::Duration::milliseconds(i as i64 * 100),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Generic: every track, in order.
    let rows = settled(
        &app,
        &token,
        generic["id"].as_i64().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(rows.len(), 100);
    assert!(rows.iter().all(|d| d["status"] == "delivered"));
    let mut arrived = entries_of(&receiver.got(), "/generic");
    arrived.dedup();
    assert_eq!(arrived, logged);

    // Discord: every track is in the list, delivered or coalesced into a later delivered one;
    // the last song is delivered; what was sent went in order.
    let rows = settled(
        &app,
        &token,
        discord["id"].as_i64().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(rows.len(), 100, "none missing from the deliveries list");
    assert_eq!(
        rows.iter()
            .map(|d| d["log_id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        logged
    );
    let by_id: HashMap<i64, &Value> = rows
        .iter()
        .map(|d| (d["id"].as_i64().unwrap(), d))
        .collect();
    let mut coalesced = 0;
    for d in &rows {
        match d["status"].as_str().unwrap() {
            "delivered" => {}
            "coalesced" => {
                coalesced += 1;
                let into = by_id[&d["coalesced_into"].as_i64().unwrap()];
                assert!(into["id"].as_i64() > d["id"].as_i64(), "into a later state");
                assert_eq!(into["status"], "delivered");
            }
            other => panic!("{other}: {d}"),
        }
    }
    assert_eq!(
        rows.last().unwrap()["status"],
        "delivered",
        "the latest song is sent"
    );
    assert!(
        coalesced > 50,
        "a slow receiver gets the latest state: {coalesced} coalesced"
    );
    let sent: Vec<String> = receiver
        .got()
        .iter()
        .filter(|g| g.path == "/discord")
        .map(|g| {
            serde_json::from_slice::<Value>(&g.body).unwrap()["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    println!("discord: {} sent, {coalesced} coalesced", sent.len());
    assert_eq!(sent.len(), 100 - coalesced);
    assert_eq!(
        sent.last().unwrap(),
        "Now playing on hookradio: Artist 99 – Song 99"
    );
    let numbers: Vec<usize> = sent
        .iter()
        .map(|s| s.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in order: {numbers:?}"
    );
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn urls_that_lead_to_private_addresses_are_refused_on_creation_and_at_send_time() {
    let app = TestApp::spawn().await;
    let token = app.admin_token();
    let receiver = Receiver::start(free_port()).await;
    for url in [
        receiver.url("/x"),
        "http://localhost:9/".into(),
        "http://[::1]/".into(),
        "http://169.254.169.254/latest".into(),
    ] {
        let (status, body) = app
            .post_json(
                "/api/v1/webhooks/",
                &token,
                &json!({"url": url, "events": ["on_air"]}),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(crate::helpers::error_fields(&body), ["url"], "{body}");
    }
    let (status, body) = app
        .post_json(
            "/api/v1/webhooks/",
            &token,
            &json!({"url": "ftp://x/", "events": ["on_air", "nope"], "preset": "tunein", "secret": ""}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        crate::helpers::error_fields(&body),
        ["events[1]", "secret", "url"],
        "{body}"
    );
    // An endpoint written before the rule (or a name that now resolves elsewhere) is refused
    // when sending: nothing reaches the receiver, the delivery says why.
    let mut conn = app.db.conn();
    let endpoint = airlog::db::webhooks::insert_endpoint(
        &mut conn,
        &airlog::db::webhooks::EndpointSettings {
            url: receiver.url("/x"),
            events: vec!["on_air".into()],
            station_id: None,
            preset: "generic".into(),
            secret: "k".into(),
            enabled: true,
        },
    )
    .unwrap();
    let (station, sound, _) = catalogue(&mut conn, 0);
    log_entries(&mut conn, station, sound, &[]);
    let started = Instant::now();
    loop {
        let rows = deliveries(&app, &token, endpoint.id).await;
        if let Some(e) = rows[0]["last_error"].as_str() {
            assert!(e.contains("loopback"), "{e}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receiver.got().is_empty());
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_api_lists_changes_tests_redelivers_and_deletes_endpoints() {
    let app = TestApp::spawn_with(quick).await;
    let token = app.admin_token();
    let reader = app.token(&[airlog::auth::Scope::Read]);
    let receiver = Receiver::start(free_port()).await;
    let (status, _) = app.get_json("/api/v1/webhooks/", &reader).await;
    assert_eq!(status, 403, "admin only");
    let created = create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/a"), "events": ["station_offline"]}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["secret"].as_str().unwrap().len(),
        64,
        "made up when not given"
    );
    let list = app.get_ok("/api/v1/webhooks/", &token).await;
    assert_eq!(list["results"][0]["preset"], "generic");
    assert!(list["results"][0].get("secret").is_none());

    // The test action sends a ping whatever the events.
    let (status, ping) = app
        .post_json(&format!("/api/v1/webhooks/{id}/test"), &token, &json!(null))
        .await;
    assert_eq!(
        (status, ping["event"].as_str()),
        (202, Some("ping")),
        "{ping}"
    );
    let rows = settled(&app, &token, id, Duration::from_secs(10)).await;
    assert_eq!(rows[0]["status"], "delivered");
    let (status, again) = app
        .post_json(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                rows[0]["id"]
            ),
            &token,
            &json!(null),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(again["redelivery_of"], rows[0]["id"]);
    assert_ne!(again["uuid"], rows[0]["uuid"]);
    let rows = settled(&app, &token, id, Duration::from_secs(10)).await;
    assert_eq!(rows.len(), 2);
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].event.as_str(), got[1].event.as_str()),
        ("ping", "ping")
    );
    assert_eq!(got[1].delivery, again["uuid"].as_str().unwrap());
    let delivered = app
        .get_ok(
            &format!("/api/v1/webhooks/{id}/deliveries?status=delivered&limit=1"),
            &token,
        )
        .await;
    assert_eq!(delivered["results"].as_array().unwrap().len(), 1);
    let (status, body) = app
        .get_json(
            &format!("/api/v1/webhooks/{id}/deliveries?status=lost"),
            &token,
        )
        .await;
    assert_eq!(
        (status, crate::helpers::error_fields(&body)),
        (400, vec!["status"])
    );

    let res = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&token),
        )
        .json(&json!({"enabled": false, "preset": "discord"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(
        (changed["enabled"].as_bool(), changed["preset"].as_str()),
        (Some(false), Some("discord"))
    );
    let (status, _) = app
        .post_json(&format!("/api/v1/webhooks/{id}/test"), &token, &json!(null))
        .await;
    assert_eq!(status, 409, "nothing is sent to a disabled endpoint");
    let res = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = app
        .get_json(&format!("/api/v1/webhooks/{id}"), &token)
        .await;
    assert_eq!(status, 404);
    receiver.stop().await;
    app.stop().await;
}

/// `airlog serve` on `db` with quick retries and 127.0.0.1 allowed.
fn serve(db: &TestDb, dir: &std::path::Path, port: u16) -> std::process::Child {
    let log = dir.join(format!("airlog-{port}.log"));
    airlog_serve(
        db,
        dir,
        port,
        &log,
        &[
            ("AIRLOG_WEBHOOKS__ALLOW_PRIVATE", "true"),
            ("AIRLOG_WEBHOOKS__POLL_MS", "50"),
            ("AIRLOG_WEBHOOKS__INITIAL_BACKOFF_MS", "100"),
            ("AIRLOG_WEBHOOKS__MAX_BACKOFF_S", "1"),
            // A kill -9 leaves the lease of an attempt in flight: it runs out after 7 s.
            ("AIRLOG_WEBHOOKS__TIMEOUT_MS", "1000"),
            ("RUST_LOG", "info"),
        ],
    )
}

#[tokio::test]
async fn kill_9_between_the_log_entry_and_its_delivery_loses_nothing() {
    let db = TestDb::new();
    let token = token_in(&db, &[airlog::auth::Scope::Admin]);
    let dir = private_temp_dir("airlog-webhooks-kill");
    let receiver_port = free_port();
    let port = free_port();
    let mut child = serve(&db, &dir, port);
    let base = format!("http://127.0.0.1:{port}");
    // The receiver is down: nothing can be delivered yet.
    let endpoint = create(
        &base,
        &token,
        &json!({"url": format!("http://127.0.0.1:{receiver_port}/hook"), "events": ["on_air", "track"], "secret": "k"}),
    )
    .await;
    let mut conn = db.conn();
    let (station, sound, tracks) = catalogue(&mut conn, 10);
    let logged = log_entries(&mut conn, station, sound, &tracks);
    // Wait until airlog has tried (and failed) at least once, then kill it without warning.
    let started = Instant::now();
    while airlog::db::webhooks::deliveries(
        &mut conn,
        endpoint["id"].as_i64().unwrap(),
        None,
        None,
        100,
    )
    .unwrap()
    .iter()
    .all(|d| d.attempts == 0)
    {
        assert!(started.elapsed() < Duration::from_secs(10), "never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();

    let receiver = Receiver::start(receiver_port).await;
    let mut child = serve(&db, &dir, port);
    let started = Instant::now();
    let arrived = loop {
        let mut arrived = entries_of(&receiver.got(), "/hook");
        arrived.dedup();
        if arrived.len() >= logged.len() || started.elapsed() > Duration::from_secs(20) {
            break arrived;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    assert_eq!(arrived, logged, "every entry, in order, after the restart");
    receiver.stop().await;
}

#[tokio::test]
async fn a_station_whose_liquidsoap_dies_is_reported_offline_then_online() {
    let dir = private_temp_dir("airlog-webhooks-offline");
    let audio = crate::helpers::tone(&dir, "tone.wav", 30);
    let mut ls = crate::liquidsoap::Liquidsoap::start(&dir, &[&audio]);
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.webhooks.offline_after_s = 1;
    })
    .await;
    let token = app.admin_token();
    let receiver = Receiver::start(free_port()).await;
    let endpoint = create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/hook"), "events": ["on_air", "station_offline", "station_online"]}),
    )
    .await;
    playout::upsert_station(
        &mut app.db.conn(),
        &station_row("onradio", "liquidsoap", ls.socket.display().to_string()),
    )
    .unwrap();
    // The monitor logs the tone on air: delivered through the outbox.
    wait_for_events(&receiver, &["on_air"]).await;
    ls.kill();
    wait_for_events(&receiver, &["on_air", "station_offline"]).await;
    ls.spawn();
    let got = wait_for_events(&receiver, &["on_air", "station_offline", "station_online"]).await;
    let offline = got.iter().position(|e| e == "station_offline").unwrap();
    let online = got.iter().position(|e| e == "station_online").unwrap();
    assert!(offline < online, "{got:?}");
    assert_eq!(
        got.iter().filter(|e| *e == "station_offline").count(),
        1,
        "{got:?}"
    );
    let body: Value = serde_json::from_slice(
        &receiver
            .got()
            .iter()
            .find(|g| g.event == "station_online")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(body["station"], "onradio");
    assert!(body["data"]["offline_s"].as_f64().unwrap() >= 1.0, "{body}");
    let rows = deliveries(&app, &token, endpoint["id"].as_i64().unwrap()).await;
    assert!(rows.iter().all(|d| d["status"] == "delivered"), "{rows:#?}");
    receiver.stop().await;
    app.stop().await;
}

/// Waits until the receiver accepted each of `want`; every accepted event, in order.
async fn wait_for_events(receiver: &Receiver, want: &[&str]) -> Vec<String> {
    let started = Instant::now();
    loop {
        let got: Vec<String> = receiver
            .got()
            .iter()
            .filter(|g| g.accepted)
            .map(|g| g.event.clone())
            .collect();
        if want.iter().all(|w| got.iter().any(|g| g == w)) {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {want:?} in {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_airlogs_on_one_database_send_each_delivery_once_and_in_order() {
    let db = TestDb::new();
    let token = token_in(&db, &[airlog::auth::Scope::Admin]);
    let start = |db: &TestDb| {
        let mut settings = crate::helpers::settings_for(db);
        quick(&mut settings);
        crate::helpers::Running::start(settings)
    };
    let (a, b) = (start(&db), start(&db));
    let receiver = Receiver::start(free_port()).await;
    // A slow receiver: both processes find the endpoint due while a request is in flight.
    receiver.slow("/hook", Duration::from_millis(150));
    create(
        &format!("http://127.0.0.1:{}", a.port),
        &token,
        &json!({"url": receiver.url("/hook"), "events": ["on_air", "track"]}),
    )
    .await;
    let mut conn = db.conn();
    let (station, sound, tracks) = catalogue(&mut conn, 20);
    let logged = log_entries(&mut conn, station, sound, &tracks);
    let started = Instant::now();
    while entries_of(&receiver.got(), "/hook").len() < logged.len() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            entries_of(&receiver.got(), "/hook")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        entries_of(&receiver.got(), "/hook"),
        logged,
        "each once, in order"
    );
    a.stop().await;
    b.stop().await;
    receiver.stop().await;
}

#[test]
fn finished_deliveries_older_than_the_keep_days_are_pruned_pending_ones_never() {
    let db = TestDb::new();
    let mut conn = db.conn();
    use airlog::db::webhooks as q;
    let endpoint = q::insert_endpoint(
        &mut conn,
        &q::EndpointSettings {
            url: "https://radio.example/hook".into(),
            events: vec!["on_air".into()],
            station_id: None,
            preset: "generic".into(),
            secret: "k".into(),
            enabled: true,
        },
    )
    .unwrap();
    let ids: Vec<i64> = (0..3)
        .map(|_| {
            q::enqueue_for(&mut conn, endpoint.id, "ping", &json!({}))
                .unwrap()
                .id
        })
        .collect();
    // Two old ones, one of them delivered; a recent delivered one.
    diesel::sql_query(
        "UPDATE webhook_delivery SET created_at = now() - interval '40 days', \
         status = CASE WHEN id = $1 THEN 'delivered' ELSE 'pending' END WHERE id = ANY ($2)",
    )
    .bind::<diesel::sql_types::BigInt, _>(ids[0])
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&ids[..2])
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("UPDATE webhook_delivery SET status = 'delivered' WHERE id = $1")
        .bind::<diesel::sql_types::BigInt, _>(ids[2])
        .execute(&mut conn)
        .unwrap();
    let pruned = q::prune(&mut conn, Utc::now() - chrono::Duration::days(30), 100).unwrap();
    assert_eq!(pruned, 1);
    let left: Vec<i64> = q::deliveries(&mut conn, endpoint.id, None, None, 10)
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        left,
        [ids[2], ids[1]],
        "the old pending one and the recent one stay"
    );
}

#[tokio::test]
async fn a_dead_receiver_stays_backed_off_while_its_backlog_is_coalesced() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.webhooks.initial_backoff_ms = 400;
        s.webhooks.max_backoff_s = 60;
    })
    .await;
    let token = app.admin_token();
    // Nothing listens there: every attempt is refused at once.
    let dead = format!("http://127.0.0.1:{}/discord", free_port());
    let endpoint = create(
        &app.address,
        &token,
        &json!({"url": dead, "events": ["track"], "preset": "discord"}),
    )
    .await;
    let mut conn = app.db.conn();
    let (station, sound, tracks) = catalogue(&mut conn, 20);
    let play = log_entries(&mut conn, station, sound, &[])[0];
    let start = Utc::now();
    for (i, t) in tracks.iter().enumerate() {
        log_track(
            &mut conn,
            station,
            sound,
            play,
            *t,
            start + chrono::Duration::milliseconds(i as i64 * 200),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = deliveries(&app, &token, endpoint["id"].as_i64().unwrap()).await;
    let attempts: i64 = rows.iter().map(|d| d["attempts"].as_i64().unwrap()).sum();
    // Backing off from 0.4 s, doubling (jitter: half to all of it), takes at least 3 s to make
    // 5 attempts; starting afresh with each newer song would make one every 0.2-0.4 s.
    assert!(
        (2..=7).contains(&attempts),
        "{attempts} attempts in 4 s: {rows:#?}"
    );
    assert_eq!(rows.len(), 20, "every song has its delivery");
    assert!(rows.iter().all(|d| d["status"] != "delivered"));
    app.stop().await;
}

#[tokio::test]
async fn listeners_crossing_a_threshold_up_and_down_is_sent_once_each_way() {
    let app = TestApp::spawn_with(|s| {
        quick(s);
        s.webhooks.listener_thresholds = vec![2];
        s.webhooks.listener_check_s = 1;
    })
    .await;
    let token = app.admin_token();
    let receiver = Receiver::start(free_port()).await;
    create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/hook"), "events": ["listeners"]}),
    )
    .await;
    // Two media-server listeners start, then one stops (the heartbeats count them).
    let jellyfin = |kind: &str, device: &str| {
        json!({"NotificationType": kind, "UtcTimestamp": rfc3339(Utc::now()), "UserId": device,
               "DeviceId": device, "ItemId": "song", "RunTimeTicks": 1_800_000_000i64})
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for device in ["d1", "d2"] {
        let (status, _) = app
            .post_json(
                "/api/v1/ingest/jellyfin",
                &token,
                &jellyfin("PlaybackStart", device),
            )
            .await;
        assert_eq!(status, 200);
    }
    wait_for_events(&receiver, &["listeners"]).await;
    let (status, _) = app
        .post_json(
            "/api/v1/ingest/jellyfin",
            &token,
            &jellyfin("PlaybackStop", "d2"),
        )
        .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    let bodies = loop {
        let bodies: Vec<Value> = receiver
            .got()
            .iter()
            .filter(|g| g.event == "listeners" && g.accepted)
            .map(|g| serde_json::from_slice(&g.body).unwrap())
            .collect();
        if bodies.len() >= 2 {
            break bodies;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{bodies:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.got().len(), 2, "once each way, not at every look");
    let seen: Vec<(&str, i64)> = bodies
        .iter()
        .map(|b| {
            (
                b["data"]["direction"].as_str().unwrap(),
                b["data"]["listeners"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("up", 2), ("down", 1)]);
    assert_eq!(bodies[0]["data"]["threshold"], 2);
    receiver.stop().await;
    app.stop().await;
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn an_endpoint_for_one_station_gets_only_that_stations_events() {
    let app = TestApp::spawn_with(quick).await;
    let token = app.admin_token();
    let receiver = Receiver::start(free_port()).await;
    let mut conn = app.db.conn();
    let (station, sound, _) = catalogue(&mut conn, 0);
    let other =
        playout::upsert_station(&mut conn, &station_row("otherradio", "none", String::new()))
            .unwrap();
    let (status, body) = app
        .post_json(
            "/api/v1/webhooks/",
            &token,
            &json!({"url": receiver.url("/one"), "events": ["on_air"], "station": "nope"}),
        )
        .await;
    assert_eq!(
        (status, crate::helpers::error_fields(&body)),
        (400, vec!["station"])
    );
    let one = create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/one"), "events": ["on_air"], "station": "otherradio"}),
    )
    .await;
    assert_eq!(one["station"], "otherradio");
    create(
        &app.address,
        &token,
        &json!({"url": receiver.url("/all"), "events": ["on_air"]}),
    )
    .await;
    log_entries(&mut conn, station, sound, &[]);
    log_entries(&mut conn, other.id, sound, &[]);
    let started = Instant::now();
    while receiver.got().len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            receiver.got()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stations = |path: &str| -> Vec<String> {
        receiver
            .got()
            .iter()
            .filter(|g| g.path == path)
            .map(|g| {
                serde_json::from_slice::<Value>(&g.body).unwrap()["station"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(stations("/one"), ["otherradio"]);
    assert_eq!(stations("/all"), ["hookradio", "otherradio"]);
    // "" makes it every station's again.
    let res = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{}", one["id"]),
            Some(&token),
        )
        .json(&json!({"station": ""}))
        .send()
        .await
        .unwrap();
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["station"], Value::Null);
    receiver.stop().await;
    app.stop().await;
}
