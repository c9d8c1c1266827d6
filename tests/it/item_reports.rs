//! The audience of every item on air and the reports built on it, against figures worked out
//! by hand in the comments from the definitions (README, "Item audience and reports").

use airlog::auth::Scope;
use airlog::db::playout::{self, NewLog};
use airlog::domain::playout::LogType;
use airlog::domain::stream_event::device_key;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{utc, TestApp};

/// 15 January 2024 (Zurich is UTC+1): `at("10:03:20")` is 11:03:20 local.
fn at(hms: &str) -> DateTime<Utc> {
    utc(&format!("2024-01-15T{hms}Z"))
}

fn connection(ip: &str, ua: &str, origin: &str, path: &str, from: &str, to: &str) -> Value {
    json!({"origin": origin, "ip": ip, "method": "GET", "path": path, "status": 200,
           "bytes_sent": 1000, "user_agent": ua, "referer": "",
           "time_start": from, "time_end": to})
}

struct Fixture {
    s1: i64,
    s2: i64,
    t1: i64,
    t2: i64,
}

/// The station, its catalogue, an as-run log of two sounds (the second with two tracks) and
/// the listening around them.
async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.admin_token();
    let (status, station) = app
        .post_json(
            "/api/v1/stations/",
            &admin,
            &json!({"name": "radio", "time_zone": "Europe/Zurich", "streamer": "none"}),
        )
        .await;
    assert_eq!(status, 201, "{station}");
    let (status, body) = app
        .put_json(
            "/api/v1/stations/radio/streams",
            &admin,
            &json!([{"kind": "icecast", "pattern": "/live.mp3"},
                    {"kind": "hls", "pattern": "/hls/live/"},
                    {"kind": "player", "pattern": "live"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // S1: a song of 240 s, cut after 200 s by the next sound. S2: a show of 300 s without an
    // artist, with T1 at 0 s (120 s long) and T2 at 120 s (length unknown).
    let (status, s1) = app
        .post_json(
            "/api/v1/sounds/",
            &admin,
            &json!({"path": "/music/one.flac", "duration": 240.0, "artist": "Björk",
                    "title": "Song One", "album": "Album", "label": "One Little Label",
                    "isrc": "is-a01-24-00001", "composer": "B. Gudmundsdottir"}),
        )
        .await;
    assert_eq!(status, 200, "{s1}");
    assert_eq!(s1["isrc"], "ISA012400001", "normalised");
    let (status, s2) = app
        .post_json(
            "/api/v1/sounds/",
            &admin,
            &json!({"path": "/shows/show.ogg", "duration": 300.0, "title": "The Show",
                    "type": "archive", "tracks": [
                        {"timestamp": 0.0, "artist": "Band B", "title": "Track B",
                         "isrc": "GBAYE6900531", "label": "Apple", "album": "Abbey",
                         "duration": 120.0},
                        {"timestamp": 120.0, "artist": "Band C", "title": "Track C, live"}]}),
        )
        .await;
    assert_eq!(status, 200, "{s2}");
    let (status, bad) = app
        .post_json(
            "/api/v1/sounds/",
            &admin,
            &json!({"path": "/x.ogg", "isrc": "nope", "tracks": [{"timestamp": 0.0, "isrc": "12"}]}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    let fields = crate::helpers::error_fields(&bad);
    assert!(
        fields.contains(&"isrc") && fields.contains(&"tracks[0].isrc"),
        "{bad}"
    );

    let station_id = station["id"].as_i64().unwrap();
    let mut conn = app.db.conn();
    let mut log =
        |date: DateTime<Utc>, sound: &Value, track: Option<&Value>, parent: Option<i64>| {
            playout::insert_log(
                &mut conn,
                &NewLog {
                    station_id,
                    r#type: LogType::OnAir,
                    date,
                    source: "main",
                    path: sound["path"].as_str(),
                    sound_id: sound["id"].as_i64(),
                    track_id: track.and_then(|t| t["id"].as_i64()),
                    parent_id: parent,
                    ..NewLog::default()
                },
            )
            .unwrap()
            .unwrap()
        };
    let s1_id = log(at("10:00:00"), &s1, None, None);
    let s2_id = log(at("10:03:20"), &s2, None, None);
    let t1_id = log(at("10:03:20"), &s2, Some(&s2["tracks"][0]), Some(s2_id));
    let t2_id = log(at("10:05:20"), &s2, Some(&s2["tracks"][1]), Some(s2_id));

    let t = |s: &str| at(s).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ingest = app.token(&[Scope::Ingest]);
    let events = vec![
        // L1 all along: 09:55-10:10.
        connection(
            "192.0.2.1",
            "VLC/3.0",
            "icecast",
            "/live.mp3",
            &t("09:55:00"),
            &t("10:10:00"),
        ),
        // L2 on HLS 10:02-10:04.
        connection(
            "192.0.2.2",
            "Mozilla/5.0 (X11)",
            "hls",
            "/hls/live/a.ts",
            &t("10:02:00"),
            &t("10:04:00"),
        ),
        // L3's browser fetches HLS 10:05-10:06 while its web player plays 10:04-10:05:20:
        // one listener, 10:04-10:06.
        connection(
            "192.0.2.3",
            "Mozilla/5.0 (Mac)",
            "hls",
            "/hls/live/b.ts",
            &t("10:05:00"),
            &t("10:06:00"),
        ),
        // L4: 59 s, not valid listening at all.
        connection(
            "192.0.2.4",
            "VLC/3.0",
            "icecast",
            "/live.mp3",
            &t("10:00:00"),
            &t("10:00:59"),
        ),
        // L5: 10:02:20.5-10:03:20.5, half a second into S2 and T1.
        connection(
            "192.0.2.5",
            "VLC/3.0",
            "icecast",
            "/live.mp3",
            "2024-01-15T10:02:20.500Z",
            "2024-01-15T10:03:20.500Z",
        ),
    ];
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/stream-events/",
            &ingest,
            &json!(events),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ip: std::net::IpAddr = "192.0.2.3".parse().unwrap();
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/player-events/trusted/",
            &ingest,
            &json!({"events": [{
                "state": "playing", "objKey": "live", "source": "live",
                "time": t("10:04:00"), "time_end": t("10:05:20"),
                "user_identity": "anonymous:l3", "device_key": device_key(&ip, "Mozilla/5.0 (Mac)"),
            }]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Fixture {
        s1: s1_id,
        s2: s2_id,
        t1: t1_id,
        t2: t2_id,
    }
}

fn close(v: &Value, want: f64) -> bool {
    (v.as_f64().unwrap() - want).abs() < 1e-4
}

/// (performances, listeners at start, listening seconds, length seconds) by hand:
/// - S1 10:00:00-10:03:20 (200 s, ended by S2): L1 200 s, L2 80 s, L5 59.5 s; at its start
///   only L1 listens.
/// - S2 10:03:20-10:08:20 (its 300 s): L1 300, L2 40, L3 120, L5 0.5 s (under 1 s: no
///   performance, but listening at its start, with L1 and L2).
/// - T1 10:03:20-10:05:20 (ended by T2 and its own 120 s): L1 120, L2 40, L3 80, L5 0.5.
/// - T2 10:05:20-10:08:20 (ended with the sound): L1 180, L3 40; at its start L1 and L3.
fn expected(f: &Fixture) -> Vec<(i64, i64, i64, f64, f64)> {
    vec![
        (f.s1, 3, 1, 339.5, 200.0),
        (f.s2, 3, 3, 460.5, 300.0),
        (f.t1, 3, 3, 240.5, 120.0),
        (f.t2, 2, 2, 220.0, 180.0),
    ]
}

fn check_item(a: &Value, want: (i64, i64, i64, f64, f64)) {
    let (id, performances, at_start, listening_s, len_s) = want;
    assert_eq!(a["log_id"], id, "{a}");
    assert_eq!(a["performances"], performances, "{a}");
    assert_eq!(a["listeners_at_start"], at_start, "{a}");
    assert!(close(&a["tlh_hours"], listening_s / 3600.0), "{a}");
    assert!(close(&a["average_audience"], listening_s / len_s), "{a}");
}

#[tokio::test]
async fn the_audience_of_each_item_is_that_computed_by_hand() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let read = app.token(&[Scope::Read]);
    // Before the audience job: computed from the sessions.
    for want in expected(&f) {
        let a = app
            .get_ok(&format!("/api/v1/onair/{}/audience", want.0), &read)
            .await;
        assert_eq!(a["computed_from"], "computed", "{a}");
        check_item(&a, want);
    }
    let (status, _) = app.get_json("/api/v1/onair/999999/audience", &read).await;
    assert_eq!(status, 404);
    let admin = app.admin_token();
    let (status, body) = app
        .post_json("/api/v1/jobs/audience/run", &admin, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    for want in expected(&f) {
        let a = app
            .get_ok(&format!("/api/v1/onair/{}/audience", want.0), &read)
            .await;
        assert_eq!(a["computed_from"], "stored", "{a}");
        check_item(&a, want);
    }
    // The log with its audience.
    let page = app
        .get_ok("/api/v1/onair/?station=radio&audience=true", &read)
        .await;
    let rows = page["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for want in expected(&f) {
        let row = rows.iter().find(|r| r["id"] == want.0).unwrap();
        check_item(&row["audience"], want);
    }
    let plain = app.get_ok("/api/v1/onair/?station=radio", &read).await;
    assert!(plain["results"][0].get("audience").is_none());
    // The operator console's log shows them on each row.
    let session = crate::console::sign_in(&app, &read).await;
    let (status, html, _) = crate::console::get(
        &app,
        "/console/stations/radio/log?day=2024-01-15",
        Some(&session),
    )
    .await;
    assert_eq!(status, 200);
    for (id, performances, at_start, _, _) in expected(&f) {
        let row = &html[html.find(&format!("data-entry-id=\"{id}\"")).unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains(&format!("data-testid=\"performances\" title=\"distinct listeners who heard it\">{performances}<")), "{row}");
        assert!(
            row.contains(&format!(
                "data-testid=\"at-start\" title=\"listeners at its start\">{at_start}<"
            )),
            "{row}"
        );
    }

    // Late listening: L6 all of T2 arrives; the stored audience is not used until the job ran.
    let ingest = app.token(&[Scope::Ingest]);
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/stream-events/",
            &ingest,
            &json!([connection(
                "192.0.2.6",
                "VLC/3.0",
                "icecast",
                "/live.mp3",
                "2024-01-15T10:05:00Z",
                "2024-01-15T10:09:00Z"
            )]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let a = app
        .get_ok(&format!("/api/v1/onair/{}/audience", f.t2), &read)
        .await;
    assert_eq!(
        (a["computed_from"].as_str(), a["performances"].as_i64()),
        (Some("computed"), Some(3))
    );
    app.post_json("/api/v1/jobs/audience/run", &admin, &json!({}))
        .await;
    let a = app
        .get_ok(&format!("/api/v1/onair/{}/audience", f.t2), &read)
        .await;
    assert_eq!(
        (a["computed_from"].as_str(), a["performances"].as_i64()),
        (Some("stored"), Some(3))
    );
    app.stop().await;
}

/// Splits a Report of Use line into its fields, checking the quoting of each: text in carets,
/// numbers bare.
fn rou_fields(line: &str) -> Vec<String> {
    line.split('|')
        .map(|f| {
            if let Some(inner) = f.strip_prefix('^') {
                let inner = inner
                    .strip_suffix('^')
                    .expect("a text field ends with a caret");
                assert!(!inner.contains('^'), "{line}");
                inner.to_string()
            } else {
                assert!(
                    f.parse::<f64>().is_ok(),
                    "a bare field is a number: {f:?} in {line}"
                );
                f.to_string()
            }
        })
        .collect()
}

#[tokio::test]
async fn reports_follow_their_formats_and_are_the_same_bytes_every_time() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let admin = app.admin_token();
    app.post_json("/api/v1/jobs/audience/run", &admin, &json!({}))
        .await;
    let read = app.token(&[Scope::Read]);
    let get = |path: String| {
        let req = app.request(reqwest::Method::GET, &path, Some(&read));
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            (status, headers, res.text().await.unwrap())
        }
    };

    // SoundExchange census Report of Use, checked field by field against the published
    // layout: a header of the 11 column names, then one line per recording.
    let (status, headers, rou) =
        get("/api/v1/reports/soundexchange?station=radio&month=2024-01".into()).await;
    assert_eq!(status, 200, "{rou}");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("radio20240101_20240131_A.txt"));
    assert!(headers["x-airlog-report-rules"]
        .to_str()
        .unwrap()
        .contains("ACTUAL_TOTAL_PERFORMANCES"));
    assert!(rou.is_ascii());
    assert!(rou.ends_with("\r\n"));
    let lines: Vec<&str> = rou.split_terminator("\r\n").collect();
    assert!(lines.iter().all(|l| !l.contains('\n')), "CRLF only");
    assert_eq!(
        rou_fields(lines[0]),
        [
            "NAME_OF_SERVICE",
            "TRANSMISSION_CATEGORY",
            "FEATURED_ARTIST",
            "SOUND_RECORDING_TITLE",
            "ISRC",
            "ALBUM_TITLE",
            "MARKETING_LABEL",
            "ACTUAL_TOTAL_PERFORMANCES",
            "AGGREGATE_TUNING_HOURS",
            "CHANNEL_OR_PROGRAM_NAME",
            "PLAY_FREQUENCY",
        ]
    );
    // The show itself (it has tracks) is not a recording; its tracks are. Valid listening in
    // January: L1 900 s + L2 120 s + L3 120 s + L5 60 s = 1200 s = 0.33 h.
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| rou_fields(l)).collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "radio",
                "A",
                "Band B",
                "Track B",
                "GBAYE6900531",
                "Abbey",
                "Apple",
                "3",
                "0.33",
                "radio",
                "1"
            ],
            vec![
                "radio",
                "A",
                "Band C",
                "Track C, live",
                "",
                "",
                "",
                "2",
                "0.33",
                "radio",
                "1"
            ],
            vec![
                "radio",
                "A",
                "Bjork",
                "Song One",
                "ISA012400001",
                "Album",
                "One Little Label",
                "3",
                "0.33",
                "radio",
                "1"
            ],
        ]
    );
    let (_, _, again) =
        get("/api/v1/reports/soundexchange?station=radio&from=2024-01-01&until=2024-02-01".into())
            .await;
    assert_eq!(again, rou, "the same period gives the same bytes");

    // The generic music report: RFC 4180, local times, one line per play.
    let (status, _, music) = get("/api/v1/reports/music?station=radio&month=2024-01".into()).await;
    assert_eq!(status, 200, "{music}");
    let lines: Vec<&str> = music.split_terminator("\r\n").collect();
    assert_eq!(lines[0], "date,time,duration_s,featured_artist,title,album,label,isrc,composer,plays,performances,tlh_hours");
    assert_eq!(lines[1], "2024-01-15,11:00:00,240,Björk,Song One,Album,One Little Label,ISA012400001,B. Gudmundsdottir,1,3,0.0943");
    assert_eq!(
        lines[2],
        "2024-01-15,11:03:20,120,Band B,Track B,Abbey,Apple,GBAYE6900531,,1,3,0.0668"
    );
    assert_eq!(
        lines[3],
        "2024-01-15,11:05:20,180,Band C,\"Track C, live\",,,,,1,2,0.0611"
    );
    assert_eq!(lines.len(), 4);

    // The programme log: every entry, with its end.
    let (_, _, log) = get("/api/v1/reports/programme-log?station=radio&month=2024-01".into()).await;
    let lines: Vec<&str> = log.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "date,start,end,type,title,artist,source,diffusion"
    );
    assert_eq!(
        lines[1],
        "2024-01-15,11:00:00,11:03:20,sound,Song One,Björk,main,"
    );
    assert_eq!(
        lines[2],
        "2024-01-15,11:03:20,11:08:20,sound,The Show,,main,"
    );
    assert_eq!(
        lines[3],
        "2024-01-15,11:03:20,11:05:20,track,Track B,Band B,main,"
    );
    assert_eq!(
        lines[4],
        "2024-01-15,11:05:20,11:08:20,track,\"Track C, live\",Band C,main,"
    );
    let (status, headers, html) =
        get("/api/v1/reports/programme-log?station=radio&month=2024-01&format=html".into()).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        html.contains(&format!("data-entry-id=\"{}\"", f.t2)),
        "{html}"
    );
    assert!(html.contains("Track C, live"));

    // What the reports lack.
    let (_, _, coverage) =
        get("/api/v1/reports/coverage?station=radio&month=2024-01&format=json".into()).await;
    let coverage: Value = serde_json::from_str(&coverage).unwrap();
    assert_eq!(
        coverage["results"],
        json!([{"artist": "Band C", "title": "Track C, live", "plays": 1, "performances": 2,
                "missing": ["isrc", "label", "album"]}])
    );

    // Bad requests name the parameter; an unknown report is 404.
    for (query, field) in [
        ("soundexchange?month=2024-01", "station"),
        ("soundexchange?station=radio&month=2024-13", "month"),
        ("music?station=radio", "month"),
        ("music?station=radio&month=2024-01&format=html", "format"),
        ("coverage?station=nope&month=2024-01", "station"),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/reports/{query}"), &read)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            crate::helpers::error_fields(&body).contains(&field),
            "{query}: {body}"
        );
    }
    assert_eq!(
        app.get_json("/api/v1/reports/ascap?station=radio&month=2024-01", &read)
            .await
            .0,
        404
    );

    // The command line writes the same file.
    let dir = crate::helpers::private_temp_dir("airlog-reports-cli");
    let file = dir.join("rou.txt");
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let (code, _, stderr) = crate::helpers::airlog_cmd(
        &[
            "report",
            "soundexchange",
            "--station",
            "radio",
            "--month",
            "2024-01",
            "-o",
            file.to_str().unwrap(),
        ],
        &env,
        &dir,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("radio20240101_20240131_A.txt"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), rou);
    let (code, _, stderr) =
        crate::helpers::airlog_cmd(&["report", "music", "--station", "radio"], &env, &dir);
    assert_eq!(code, 1);
    assert!(stderr.contains("--month"), "{stderr}");
    let _ = f.s1;
    app.stop().await;
}

/// An Ogg file with these Vorbis comments, made by sox.
fn tagged(dir: &std::path::Path, name: &str, comments: &[&str]) {
    let mut cmd = std::process::Command::new("sox");
    cmd.args(["-q", "-D", "-n"]);
    for c in comments {
        cmd.args(["--comment", c]);
    }
    let status = cmd
        .arg(dir.join(name))
        .args(["synth", "1", "sine", "440"])
        .status()
        .expect("sox is installed (make deps)");
    assert!(status.success());
}

#[tokio::test]
async fn catalog_scan_reads_what_the_reports_need_from_tags() {
    let app = TestApp::spawn().await;
    let dir = crate::helpers::private_temp_dir("airlog-tags");
    tagged(
        &dir,
        "a.ogg",
        &[
            "TITLE=Song A",
            "ARTIST=Band A",
            "ALBUM=First",
            "LABEL=Label A",
            "ISRC=us-rc1-76-07839",
            "COMPOSER=Writer A",
        ],
    );
    // No LABEL: the publisher (ORGANIZATION) stands in; a malformed ISRC is left out.
    tagged(
        &dir,
        "b.ogg",
        &[
            "TITLE=Song B",
            "ARTIST=Band B",
            "ORGANIZATION=Publisher B",
            "ISRC=not an isrc",
        ],
    );
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let (code, stdout, stderr) =
        crate::helpers::airlog_cmd(&["catalog", "scan", dir.to_str().unwrap()], &env, &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 sounds registered"), "{stdout}");
    let sounds = airlog::db::playout::sounds(&mut app.db.conn(), None, 10).unwrap();
    let a = sounds.iter().find(|s| s.path.ends_with("a.ogg")).unwrap();
    assert_eq!(
        (
            a.album.as_str(),
            a.label.as_str(),
            a.isrc.as_str(),
            a.composer.as_str()
        ),
        ("First", "Label A", "USRC17607839", "Writer A")
    );
    let b = sounds.iter().find(|s| s.path.ends_with("b.ogg")).unwrap();
    assert_eq!((b.label.as_str(), b.isrc.as_str()), ("Publisher B", ""));
    app.stop().await;
}
