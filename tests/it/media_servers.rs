//! Media servers in: Jellyfin (webhook plugin), Plex (multipart with a `payload` part) and Emby
//! notifications, written from the fields their documentation shows, become trusted player
//! events and listening sessions; repeats are duplicates; unknown shapes are refused naming the
//! problem; a token in the path never reaches the log.

use std::time::Duration;

use airlog::auth::Scope;
use airlog::domain::stream_event::device_key;
use airlog::jobs::{self, Trigger, Window};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{json, Value};

use crate::helpers::{
    airlog_serve, free_port, json_of, private_temp_dir, token_in, TestApp, TestDb,
};

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Jellyfin's webhook plugin with the README's template ("Generic" destination).
fn jellyfin(kind: &str, at: DateTime<Utc>, paused: bool) -> Value {
    json!({
        "ServerId": "8a4b1c", "ServerName": "jelly", "NotificationType": kind,
        "Timestamp": "2026-12-05 21:00:00", "UtcTimestamp": rfc(at),
        "Name": "Night Shift", "ItemId": "f3a9e1", "ItemType": "Audio",
        "RunTimeTicks": 2_400_000_000i64, "PlaybackPositionTicks": 0, "IsPaused": paused,
        "UserId": "4c1e7d", "NotificationUsername": "ann",
        "DeviceId": "TW96aWxsYS81LjA", "DeviceName": "Firefox", "ClientName": "Jellyfin Web"
    })
}

/// Emby's webhook JSON.
fn emby(event: &str, at: DateTime<Utc>) -> Value {
    json!({
        "Title": "bob is playing Morning News", "Date": rfc(at), "Event": event, "Severity": "Info",
        "Server": {"Name": "emby", "Id": "e1", "Version": "4.8.0.0"},
        "User": {"Name": "bob", "Id": "9f2d"},
        "Item": {"Name": "Morning News", "Id": "5512", "Type": "Audio", "MediaType": "Audio", "RunTimeTicks": 18_000_000_000i64},
        "Session": {"RemoteEndPoint": "198.51.100.23", "Client": "Emby Web", "DeviceName": "Chrome", "DeviceId": "c0ffee", "Id": "s1"},
        "PlaybackInfo": {"PositionTicks": 0, "PlaySessionId": "p1"}
    })
}

/// Plex's payload (sent as the `payload` part of a multipart form, with a thumbnail part).
fn plex(event: &str) -> Value {
    json!({
        "event": event, "user": true, "owner": true,
        "Account": {"id": 1, "thumb": "https://plex.tv/users/1/avatar", "title": "cleo"},
        "Server": {"title": "Studio", "uuid": "54664a3d8acc39983675640ec9ce00b70af9cc36"},
        "Player": {"local": false, "publicAddress": "203.0.113.9", "title": "Plexamp", "uuid": "r6yfkdnfggbh2bdnvkffwbms"},
        "Metadata": {"librarySectionType": "artist", "ratingKey": "1936545", "key": "/library/metadata/1936545",
                     "type": "track", "title": "Blue Monday", "grandparentTitle": "New Order",
                     "parentTitle": "Power, Corruption & Lies", "duration": 446000, "viewOffset": 0}
    })
}

/// A multipart form as Plex posts it: the JSON in `payload`, then a JPEG `thumb`.
fn form(field: &str, json: &Value) -> (String, Vec<u8>) {
    let boundary = "------------------------airlogtestboundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\nContent-Type: application/json\r\n\r\n{json}\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"thumb\"; filename=\"thumb.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(&[
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0xff, 0xd9,
    ]);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(app: &TestApp, path: &str, field: &str, json: &Value) -> (u16, Value) {
    let (ct, body) = form(field, json);
    json_of(
        app.client
            .post(app.url(path))
            .header("Content-Type", ct)
            .body(body),
    )
    .await
}

#[tokio::test]
async fn jellyfin_plex_and_emby_playback_becomes_player_events_and_sessions() {
    let app = TestApp::spawn().await;
    let ingest = app.token(&[Scope::Ingest]);
    let read = app.token(&[Scope::Read]);
    let t0 = Utc::now().trunc_subsecs(0) - chrono::Duration::minutes(30);
    let s = |n: i64| t0 + chrono::Duration::seconds(n);

    // Jellyfin: the plugin can send a header, so the token goes there.
    for (kind, at, paused) in [
        ("PlaybackStart", s(0), false),
        ("PlaybackProgress", s(120), true),
        ("PlaybackProgress", s(180), false),
        ("PlaybackStop", s(400), false),
    ] {
        let (status, body) = app
            .post_json(
                "/api/v1/ingest/jellyfin",
                &ingest,
                &jellyfin(kind, at, paused),
            )
            .await;
        assert_eq!(
            (status, &body),
            (200, &json!({"created": 1, "duplicates": 0, "ignored": 0}))
        );
    }
    // The plugin retrying: a duplicate, not a second play.
    let (_, again) = app
        .post_json(
            "/api/v1/ingest/jellyfin",
            &ingest,
            &jellyfin("PlaybackStart", s(0), false),
        )
        .await;
    assert_eq!(again, json!({"created": 0, "duplicates": 1, "ignored": 0}));

    // Emby: JSON, the token in the path.
    for (event, at) in [
        ("playback.start", s(10)),
        ("playback.pause", s(70)),
        ("playback.unpause", s(100)),
        ("playback.stop", s(300)),
    ] {
        let (status, body) = json_of(
            app.client
                .post(app.url(&format!("/api/v1/ingest/emby/{ingest}")))
                .json(&emby(event, at)),
        )
        .await;
        assert_eq!(
            (status, body["created"].as_i64()),
            (200, Some(1)),
            "{event}: {body}"
        );
    }

    // Plex: multipart, the token in the path, no time of its own (the arrival, to the second).
    let path = format!("/api/v1/ingest/plex/{ingest}");
    let (status, body) = post_form(&app, &path, "payload", &plex("media.play")).await;
    assert_eq!((status, body["created"].as_i64()), (200, Some(1)), "{body}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, body) = post_form(&app, &path, "payload", &plex("media.scrobble")).await;
    assert_eq!(body, json!({"created": 0, "duplicates": 0, "ignored": 1}));
    let (_, body) = post_form(&app, &path, "payload", &plex("media.stop")).await;
    assert_eq!(body["created"], 1);

    // The events, as any trusted player events.
    let events = app
        .get_ok("/api/v1/stats/player-events/?limit=100", &read)
        .await;
    let rows = events["results"].as_array().unwrap();
    assert_eq!(rows.len(), 10, "{events:#}");
    let jf_key = device_key(&"127.0.0.1".parse().unwrap(), "jellyfin:TW96aWxsYS81LjA");
    let jf: Vec<&Value> = rows
        .iter()
        .filter(|r| r["userIdentity"] == "jellyfin.user:4c1e7d")
        .collect();
    assert_eq!(
        jf.iter()
            .map(|r| r["state"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["playing", "paused", "playing", "stopped"]
    );
    for r in &jf {
        assert_eq!(
            (r["objKey"].as_str(), r["source"].as_str()),
            (Some("jellyfin:f3a9e1"), Some("on-demand"))
        );
        assert_eq!(
            r["deviceKey"],
            jf_key.as_str(),
            "keyed by the server's address and the device id"
        );
        assert_eq!(r["maxDurationS"], 240.0, "{r}");
    }
    assert_eq!(jf[1]["time"], rfc(s(120)).replace(".000", ""));
    let emby_key = device_key(&"198.51.100.23".parse().unwrap(), "emby:c0ffee");
    assert_eq!(rows.iter().filter(|r| r["deviceKey"] == emby_key.as_str() && r["userIdentity"] == "emby.user:9f2d").count(), 4);
    let plex_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["userIdentity"] == "plex.user:1")
        .collect();
    assert_eq!(plex_rows.len(), 2);
    assert_eq!(plex_rows[0]["objKey"], "plex:1936545");
    assert_eq!(plex_rows[0]["maxDurationS"], 446.0);
    assert_eq!(
        plex_rows[0]["deviceKey"],
        device_key(
            &"203.0.113.9".parse().unwrap(),
            "plex:r6yfkdnfggbh2bdnvkffwbms"
        )
        .as_str()
    );

    // The session job makes listening sessions of them, like a web player's.
    let settings = airlog::config::JobSettings {
        session_min_s: 0,
        ..Default::default()
    };
    let now = Utc::now();
    let window = Window {
        start: t0 - chrono::Duration::hours(1),
        end: now + chrono::Duration::minutes(1),
    };
    jobs::run_all(
        &mut app.db.conn(),
        window,
        now + chrono::Duration::minutes(1),
        &settings,
        Trigger::Cli,
    )
    .unwrap();
    let sessions = app.get_ok("/api/v1/stats/sessions/?limit=100", &read).await;
    let by_user = |id: &str| -> Value {
        sessions["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["userIdentity"] == id)
            .unwrap_or_else(|| panic!("no session of {id}: {sessions:#}"))
            .clone()
    };
    let jf = by_user("jellyfin.user:4c1e7d");
    // Playing 0-120 s and 180-400 s.
    assert_eq!(
        (
            jf["durationPlayingS"].as_f64(),
            jf["durationPlayingOndemandS"].as_f64()
        ),
        (Some(340.0), Some(340.0)),
        "{jf}"
    );
    assert_eq!(jf["timeStart"], rfc(s(0)).replace(".000", ""));
    let em = by_user("emby.user:9f2d");
    assert_eq!(em["durationPlayingS"], 260.0, "60 s, then 100-300 s: {em}");
    assert_eq!(em["remoteAddr"], "198.51.100.23");
    let px = by_user("plex.user:1");
    let played = px["durationPlayingS"].as_f64().unwrap();
    assert!(
        (2.0..=4.0).contains(&played),
        "the seconds between play and stop: {px}"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_shapes_bad_servers_and_bad_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let ingest = app.token(&[Scope::Ingest]);
    let read = app.token(&[Scope::Read]);
    let (status, body) = app
        .post_json(
            "/api/v1/ingest/jellyfin",
            &ingest,
            &json!({"NotificationType": "PlaybackStart", "UserId": "u"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "not a jellyfin notification airlog reads: DeviceId is missing"
    );
    let (status, body) = post_form(
        &app,
        &format!("/api/v1/ingest/plex/{ingest}"),
        "thumbnail",
        &plex("media.play"),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("not a plex notification airlog reads: payload is missing from the form")
        )
    );
    let (status, body) = json_of(
        app.client
            .post(app.url(&format!("/api/v1/ingest/emby/{ingest}")))
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("body is not JSON"),
        "{body}"
    );
    let (status, body) = app
        .post_json(
            "/api/v1/ingest/emby",
            &ingest,
            &json!({"Event": "playback.start", "Date": "2026-12-05 10:00", "User": {"Id": "u"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Date is not an RFC 3339 time"),
        "{body}"
    );
    let (status, _) = app
        .post_json("/api/v1/ingest/kodi", &ingest, &json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post_json(&format!("/api/v1/ingest/plex/{read}"), &ingest, &json!({}))
        .await;
    assert_eq!(status, 403, "a token without the ingest scope");
    let (status, _) = json_of(
        app.client
            .post(app.url("/api/v1/ingest/plex/0123456789abcdef0123456789abcdef01234567"))
            .json(&plex("media.play")),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = json_of(
        app.client
            .post(app.url("/api/v1/ingest/plex"))
            .json(&plex("media.play")),
    )
    .await;
    assert_eq!(status, 401, "no token at all");
    app.stop().await;
}

#[test]
fn a_token_in_the_path_never_reaches_the_log() {
    let db = TestDb::new();
    let token = token_in(&db, &[Scope::Ingest]);
    let dir = private_temp_dir("airlog-media-log");
    let port = free_port();
    let log_path = dir.join("airlog.log");
    let mut child = airlog_serve(&db, &dir, port, &log_path, &[("RUST_LOG", "debug")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/api/v1/ingest/plex/{token}");
        // One notification read, one refused: each path is logged.
        for (payload, status) in [
            (plex("media.play"), 200),
            (json!({"event": "media.play"}), 400),
        ] {
            let (ct, body) = form("payload", &payload);
            let res = client
                .post(&url)
                .header("Content-Type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), status);
        }
        let missing = client.post(format!("{url}/extra")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
    });
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("/api/v1/ingest/plex/<token>"), "{text}");
    assert!(text.contains("media server notification refused"), "{text}");
    assert!(!text.contains(&token), "the token is in the log:\n{text}");
    assert!(!text.contains("Blue Monday"), "no body in the log");
}
