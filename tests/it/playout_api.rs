use std::process::Command;

use airlog::auth::Scope;
use airlog::db::playout::{self, NewLog};
use serde_json::json;

use crate::helpers::{airlog_cmd, error_fields, private_temp_dir, utc as t, TestApp};

#[tokio::test]
async fn operators_manage_stations_sounds_and_diffusions_and_read_the_log() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let read = app.token(&[Scope::Read]);

    let station = json!({"name": "main", "time_zone": "Europe/Zurich", "streamer": "none"});
    assert_eq!(
        app.post_json("/api/v1/stations/", &read, &station).await.0,
        403
    );
    let (status, body) = app.post_json("/api/v1/stations/", &admin, &station).await;
    assert_eq!(status, 201, "a creation: {body}");
    let station_id = body["id"].as_i64().unwrap();
    let (status, body) = app.post_json("/api/v1/stations/", &admin, &station).await;
    assert_eq!(status, 200, "posting it again updates it: {body}");
    assert_eq!(body["id"].as_i64(), Some(station_id));
    let (status, body) = app
        .put_json(
            "/api/v1/stations/main",
            &admin,
            &json!({"time_zone": "Mars/Base", "poll_ms": 5}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_fields(&body), ["time_zone", "poll_ms"]);
    let (status, body) = app
        .put_json(
            "/api/v1/stations/main",
            &admin,
            &json!({"cancel_timeout_s": 600}),
        )
        .await;
    assert_eq!(
        (status, body["cancel_timeout_s"].as_i64()),
        (200, Some(600))
    );
    assert_eq!(body["time_zone"], "Europe/Zurich", "other fields kept");

    let sound = json!({"path": "/srv/show.ogg", "duration": 3600, "title": "Show", "type": "archive", "program": "morning",
                       "tracks": [{"timestamp": 60, "artist": "A", "title": "One"}, {"timestamp": 300, "artist": "B", "title": "Two"}]});
    let (status, body) = app.post_json("/api/v1/sounds/", &admin, &sound).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tracks"].as_array().unwrap().len(), 2);
    let (status, body) = app.post_json("/api/v1/sounds/", &admin, &json!({"path": "/x.ogg", "type": "song", "duration": 10, "tracks": [{"timestamp": 20}]})).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "{body}");

    let diffusion = json!({"station": "main", "start": "2024-11-05T06:00:00+01:00", "end": "2024-11-05T07:00:00+01:00",
                           "title": "Morning", "sounds": ["/srv/show.ogg"]});
    let (status, body) = app
        .post_json("/api/v1/diffusions/", &admin, &diffusion)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sounds"], json!(["/srv/show.ogg"]));
    let (status, body) = app.post_json("/api/v1/diffusions/", &admin, &json!({"station": "main", "start": "2024-11-05 06:00:00", "end": "2024-11-05T05:00:00Z", "sounds": ["/nope.ogg"]})).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"][0]["field"], "start", "{body}");
    let (_, listed) = app
        .get_json(
            "/api/v1/diffusions/?station=main&from=2024-11-05T00:00:00Z",
            &read,
        )
        .await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 1);

    // The as-run log: newest first, by broadcast day in station time (04:00 Zurich = 03:00Z).
    let mut c = app.db.conn();
    for (date, path) in [
        ("2024-11-05T02:59:00Z", "/a.ogg"),
        ("2024-11-05T03:00:00Z", "/b.ogg"),
        ("2024-11-05T05:00:00Z", "/c.ogg"),
        ("2024-11-05T05:00:00Z", "/d.ogg"),
    ] {
        playout::insert_log(
            &mut c,
            &NewLog {
                station_id,
                r#type: "on_air".parse().unwrap(),
                date: t(date),
                source: "airlog_rotation",
                path: Some(path),
                tags: json!({}),
                ..NewLog::default()
            },
        )
        .unwrap();
    }
    let (status, day) = app
        .get_json("/api/v1/onair/?station=main&day=2024-11-05&limit=2", &read)
        .await;
    assert_eq!(status, 200, "{day}");
    assert_eq!(day["count"], 3);
    let paths: Vec<&str> = day["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/d.ogg", "/c.ogg"], "newest first, ties by id");
    let next = day["next"].as_str().unwrap().to_string();
    let page2 = app.get_ok(&next, &read).await;
    assert_eq!(page2["results"][0]["path"], "/b.ogg");
    assert!(page2["next"].is_null());
    let (_, previous_day) = app
        .get_json("/api/v1/onair/?station=main&day=2024-11-04", &read)
        .await;
    assert_eq!(previous_day["count"], 1);

    let (status, now) = app.get_json("/api/v1/onair/now?station=main", &read).await;
    assert_eq!(status, 200);
    assert_eq!(now["observed"]["sound"]["path"], "/d.ogg");
    assert!(now["scheduled"]["current"].is_null());
    let (status, _) = app.get_json("/api/v1/onair/now?station=nope", &read).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn catalog_scan_registers_audio_files_with_their_duration_and_tags() {
    let app = TestApp::spawn().await;
    let dir = private_temp_dir("airlog-scan");
    std::fs::create_dir_all(dir.join("shows")).unwrap();
    for (name, secs, title) in [("shows/one.ogg", "3", "First show"), ("two.wav", "2", "")] {
        let status = Command::new("sox")
            .args(["-q", "-D", "-n", "--comment", &format!("title={title}")])
            .arg(dir.join(name))
            .args(["synth", secs, "sine", "330"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::write(dir.join("notes.txt"), "not audio").unwrap();
    std::fs::write(dir.join("broken.mp3"), "not really mp3").unwrap();
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let d = dir.to_str().unwrap();
    for _ in 0..2 {
        let (code, stdout, stderr) = airlog_cmd(
            &[
                "catalog",
                "scan",
                d,
                "--type",
                "archive",
                "--program",
                "morning",
            ],
            &env,
            &dir,
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("2 sounds registered") && stdout.contains("1 files skipped"),
            "{stdout}"
        );
        assert!(stderr.contains("broken.mp3"), "{stderr}");
    }
    let sounds = playout::sounds(&mut app.db.conn(), Some("morning"), 100).unwrap();
    assert_eq!(sounds.len(), 2, "scanning twice adds nothing");
    let one = sounds.iter().find(|s| s.path.ends_with("one.ogg")).unwrap();
    assert_eq!(one.title, "First show");
    assert!(
        (one.duration_s.unwrap() - 3.0).abs() < 0.05,
        "{:?}",
        one.duration_s
    );
    assert_eq!(one.r#type, "archive");
    let two = sounds.iter().find(|s| s.path.ends_with("two.wav")).unwrap();
    assert_eq!(two.title, "two", "the file name when there is no title tag");
    app.stop().await;
}
