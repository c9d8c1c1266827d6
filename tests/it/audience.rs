//! Audience figures through the API, against figures computed by hand from the definitions
//! (README, "Audience figures"): every expected number below is worked out in the comments.

use airlog::auth::Scope;
use airlog::domain::stream_event::device_key;
use serde_json::{json, Value};

use crate::helpers::TestApp;

const STREAMS: &str = "/api/v1/stations/radio/streams";

/// A station in Zurich with two Icecast mounts, an HLS prefix and the live player source.
async fn station(app: &TestApp, admin: &str) {
    let (status, body) = app
        .post_json(
            "/api/v1/stations/",
            admin,
            &json!({"name": "radio", "time_zone": "Europe/Zurich", "streamer": "none"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let streams = json!([
        {"kind": "icecast", "pattern": "/live.mp3"},
        {"kind": "icecast", "pattern": "/live.aac"},
        {"kind": "hls", "pattern": "/hls/live/"},
        {"kind": "player", "pattern": "live"},
    ]);
    let (status, body) = app.put_json(STREAMS, admin, &streams).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 4);
}

fn connection(ip: &str, ua: &str, origin: &str, path: &str, start: &str, end: &str) -> Value {
    json!({"origin": origin, "ip": ip, "method": "GET", "path": path, "status": 200,
           "bytes_sent": 1000, "user_agent": ua, "referer": "",
           "time_start": start, "time_end": end})
}

async fn ingest(app: &TestApp, events: Vec<Value>) {
    let token = app.token(&[Scope::Ingest]);
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/stream-events/",
            &token,
            &json!(events),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Monday 15 January 2024, 11:00-12:00 in Zurich (UTC+1) = 10:00-11:00 UTC.
async fn the_fixture_hour(app: &TestApp) {
    let at = |hms: &str| format!("2024-01-15T{hms}Z");
    ingest(
        app,
        vec![
            // A: 4 min 59 s; B: 5 min exactly, both from 10:00.
            connection(
                "192.0.2.1",
                "VLC/3.0.18",
                "icecast",
                "/live.mp3",
                &at("10:00:00"),
                &at("10:04:59"),
            ),
            connection(
                "192.0.2.2",
                "VLC/3.0.18",
                "icecast",
                "/live.mp3",
                &at("10:00:00"),
                &at("10:05:00"),
            ),
            // C on two mounts at once: 10:20-10:40 and 10:30-10:50, one listening 10:20-10:50.
            connection(
                "192.0.2.3",
                "Winamp/5.9",
                "icecast",
                "/live.mp3?x=1",
                &at("10:20:00"),
                &at("10:40:00"),
            ),
            connection(
                "192.0.2.3",
                "Winamp/5.9",
                "icecast",
                "/live.aac",
                &at("10:30:00"),
                &at("10:50:00"),
            ),
            // D: a 59 s session, not counted at all.
            connection(
                "192.0.2.4",
                "VLC/3.0.18",
                "icecast",
                "/live.mp3",
                &at("10:10:00"),
                &at("10:10:59"),
            ),
            // A robot, not counted.
            connection(
                "192.0.2.5",
                "Googlebot/2.1 (+http://www.google.com/bot.html)",
                "icecast",
                "/live.mp3",
                &at("10:00:00"),
                &at("10:30:00"),
            ),
            // Another station's stream: not this station's.
            connection(
                "192.0.2.9",
                "VLC/3.0.18",
                "icecast",
                "/other.mp3",
                &at("10:00:00"),
                &at("10:30:00"),
            ),
            // E: the HLS stream 10:00-10:30 ...
            connection(
                "192.0.2.6",
                "Mozilla/5.0 (X11)",
                "hls",
                "/hls/live/index.m3u8",
                &at("10:00:00"),
                &at("10:30:00"),
            ),
        ],
    )
    .await;
    // ... and the web player of the same browser 10:15-10:45: one listening 10:00-10:45.
    let ip: std::net::IpAddr = "192.0.2.6".parse().unwrap();
    let token = app.token(&[Scope::Ingest]);
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/player-events/trusted/",
            &token,
            &json!({"events": [{
                "state": "playing", "objKey": "live", "source": "live",
                "time": at("10:15:00"), "time_end": at("10:45:00"),
                "user_identity": "anonymous:e", "device_key": device_key(&ip, "Mozilla/5.0 (X11)"),
            }]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn close(v: &Value, want: f64) -> bool {
    (v.as_f64().unwrap() - want).abs() < 1e-3
}

#[tokio::test]
async fn the_figures_of_an_hour_are_those_computed_by_hand() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    station(&app, &admin).await;
    the_fixture_hour(&app).await;
    let read = app.token(&[Scope::Read]);
    let (status, body) = app
        .get_json(
            "/api/v1/audience/?station=radio&from=2024-01-15T11:00:00%2B01:00&until=2024-01-15T12:00:00%2B01:00&interval=hour",
            &read,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["time_zone"], "Europe/Zurich");
    assert_eq!(
        body["rules"]["excluded"],
        json!({"robot": 1, "too_short": 1})
    );
    let r = &body["results"][0];
    assert_eq!(r["start"], "2024-01-15T11:00:00+01:00");
    assert_eq!(r["end"], "2024-01-15T12:00:00+01:00");
    // Listening: A 299 s, B 300 s, C 1800 s (union of two mounts), E 2700 s (union of HLS and
    // player): TLH = 5099 s.
    assert!(close(&r["tlh_hours"], 5099.0 / 3600.0), "{r}");
    // Every one of them has >= 60 s: Cume 4. TSL = 5099 / 60 / 4 min. AAS = TLH / 1 h.
    assert_eq!(r["cume"], 4, "{r}");
    assert!(close(&r["tsl_minutes"], 5099.0 / 60.0 / 4.0), "{r}");
    assert!(close(&r["aas"], 5099.0 / 3600.0), "{r}");
    // Quarter-hours (UTC): 10:00 B and E (A has 4:59): 2; 10:15 C (10 min) and E: 2;
    // 10:30 C and E: 2; 10:45 C (5 min): 1. AQH = 7 / 4.
    assert!(close(&r["aqh"], 1.75), "{r}");
    // At 10:00 A, B and E listen; later never more than two.
    assert_eq!(r["peak"], 3);
    assert_eq!(r["peak_at"], "2024-01-15T11:00:00+01:00");
    // Sessions started: A, B, C twice, E on HLS and on the player.
    assert_eq!(r["sessions"], 6);

    // By source: each source's own Cume; the total de-duplicates.
    let (_, body) = app
        .get_json(
            "/api/v1/audience/?station=radio&from=2024-01-15T11:00:00%2B01:00&until=2024-01-15T12:00:00%2B01:00&interval=hour&by=source",
            &read,
        )
        .await;
    let rows = body["results"].as_array().unwrap();
    let cume_of = |g: Option<&str>| {
        rows.iter()
            .find(|r| r["group"].as_str() == g)
            .map(|r| r["cume"].as_u64().unwrap())
    };
    assert_eq!(cume_of(None), Some(4));
    assert_eq!(cume_of(Some("icecast")), Some(3));
    assert_eq!(cume_of(Some("hls")), Some(1));
    assert_eq!(cume_of(Some("player")), Some(1));

    // Quarter-hours, and the same as CSV.
    let (_, body) = app
        .get_json(
            "/api/v1/audience/?station=radio&from=2024-01-15T11:00:00%2B01:00&until=2024-01-15T12:00:00%2B01:00&interval=quarter_hour",
            &read,
        )
        .await;
    let aqh: Vec<f64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["aqh"].as_f64().unwrap())
        .collect();
    assert_eq!(aqh, vec![2.0, 2.0, 2.0, 1.0]);
    let (status, csv) = app
        .get_text(
            "/api/v1/audience.csv?station=radio&from=2024-01-15&until=2024-01-16&interval=day",
            &read,
        )
        .await;
    assert_eq!(status, 200, "{csv}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("start,end,group,aqh,cume,tlh_hours,tsl_minutes,aas,peak,peak_at,sessions")
    );
    let day: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(day[0], "2024-01-15T00:00:00+01:00");
    assert_eq!(day[1], "2024-01-16T00:00:00+01:00");
    // Cume 4, peak 3, 6 sessions; AQH = 7 persons over the day's 96 quarter-hours.
    assert_eq!((day[4], day[8], day[10]), ("4", "3", "6"));
    assert!(
        (day[3].parse::<f64>().unwrap() - 7.0 / 96.0).abs() < 1e-3,
        "{csv}"
    );

    // The command line prints the same report, as CSV and as a table.
    let dir = crate::helpers::private_temp_dir("airlog-report-cli");
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let args = [
        "report",
        "audience",
        "--station",
        "radio",
        "--from",
        "2024-01-15",
        "--until",
        "2024-01-16",
        "--interval",
        "day",
    ];
    let (code, stdout, stderr) =
        crate::helpers::airlog_cmd(&[&args[..], &["--format", "csv"]].concat(), &env, &dir);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, csv);
    let (code, table, stderr) = crate::helpers::airlog_cmd(&args, &env, &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(table.contains("radio (Europe/Zurich), by day"), "{table}");
    assert!(
        table.contains("sessions not counted: robot 1, too_short 1"),
        "{table}"
    );
    let (code, _, stderr) = crate::helpers::airlog_cmd(
        &[
            "report",
            "audience",
            "--station",
            "nope",
            "--from",
            "2024-01-15",
            "--until",
            "x",
        ],
        &env,
        &dir,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("--station: no such station"), "{stderr}");
    assert!(stderr.contains("--until:"), "{stderr}");
    app.stop().await;
}

#[tokio::test]
async fn a_dst_day_has_25_hours_and_a_daypart_counts_its_wall_clock_windows() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    station(&app, &admin).await;
    // One listener all of Sunday 27 October 2024 (Zurich falls back: 25 hours), local
    // midnight to midnight = 26 Oct 22:00 UTC to 27 Oct 23:00 UTC.
    ingest(
        &app,
        vec![connection(
            "192.0.2.1",
            "VLC/3.0.18",
            "icecast",
            "/live.mp3",
            "2024-10-26T22:00:00Z",
            "2024-10-27T23:00:00Z",
        )],
    )
    .await;
    let read = app.token(&[Scope::Read]);
    let (status, body) = app
        .get_json(
            "/api/v1/audience/?station=radio&from=2024-10-27&until=2024-10-28&interval=hour",
            &read,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 25);
    let (_, body) = app
        .get_json(
            "/api/v1/audience/?station=radio&from=2024-10-27&until=2024-10-28&interval=day",
            &read,
        )
        .await;
    let day = &body["results"][0];
    assert!(close(&day["tlh_hours"], 25.0), "{day}");
    assert!(close(&day["aas"], 1.0), "{day}");
    assert!(close(&day["aqh"], 1.0), "{day}");
    // A named daypart over the repeated hour: 01:00-04:00 local is 4 hours that night.
    let (status, body) = app
        .put_json(
            "/api/v1/stations/radio/dayparts",
            &admin,
            &json!({"night": "sun 01:00-04:00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = app
        .get_json(
            "/api/v1/audience/?station=radio&from=2024-10-27&until=2024-10-28&interval=day&daypart=night",
            &read,
        )
        .await;
    assert_eq!(body["rules"]["daypart"], "sun 01:00-04:00");
    let night = &body["results"][0];
    assert!(close(&night["tlh_hours"], 4.0), "{night}");
    assert!(close(&night["aas"], 1.0), "{night}");
    assert!(close(&night["aqh"], 1.0), "{night}");
    assert_eq!(night["sessions"], 0, "it started before the daypart");
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_parameter() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    station(&app, &admin).await;
    let read = app.token(&[Scope::Read]);
    for (query, field) in [
        ("station=radio&until=2024-01-02", "from"),
        ("station=nope&from=2024-01-01&until=2024-01-02", "station"),
        ("station=radio&from=2024-01-02&until=2024-01-01", "until"),
        (
            "station=radio&from=2024-01-01&until=2024-01-02&interval=minute",
            "interval",
        ),
        (
            "station=radio&from=2024-01-01&until=2024-01-02&by=planet",
            "by",
        ),
        (
            "station=radio&from=2024-01-01&until=2024-01-02&daypart=mon%2025:00-26:00",
            "daypart",
        ),
        ("station=radio&from=1999-01-01&until=2024-01-02", "from"),
        (
            "station=radio&from=2001-01-01&until=2099-01-01&interval=quarter_hour",
            "interval",
        ),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/audience/?{query}"), &read)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let fields: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{query}: {body}");
    }
    // Streams are checked, and one stream belongs to one station.
    let (status, body) = app
        .put_json(
            STREAMS,
            &admin,
            &json!([{"kind": "icecast", "pattern": "live.mp3"}]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .post_json(
            "/api/v1/stations/",
            &admin,
            &json!({"name": "other", "streamer": "none"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .put_json(
            "/api/v1/stations/other/streams",
            &admin,
            &json!([{"kind": "icecast", "pattern": "/live.mp3"}]),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        app.get_json("/api/v1/audience/?from=2024-01-01&until=2024-01-02", "nope")
            .await
            .0,
        401
    );
    app.stop().await;
}

/// A small deterministic generator (the test needs no crate for it).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Listening of 40 listeners over three days around the DST end, on two mounts, HLS and the
/// web player, at times off the quarter-hour grid, with robots and short sessions among them.
async fn random_listening(app: &TestApp, seed: u64, count: usize) {
    let mut rng = Lcg(seed);
    let start = chrono::DateTime::parse_from_rfc3339("2024-10-25T22:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let agents = [
        "VLC/3.0.18",
        "Mozilla/5.0 (X11)",
        "Googlebot/2.1",
        "Winamp/5.9",
    ];
    let paths = [
        ("icecast", "/live.mp3"),
        ("icecast", "/live.aac"),
        ("hls", "/hls/live/index.m3u8"),
    ];
    let mut streams = Vec::new();
    let mut plays = Vec::new();
    for _ in 0..count {
        let who = rng.next(40);
        let ip = format!("198.51.100.{}", who + 1);
        let ua = agents[(who % 4) as usize];
        let mut from = start + chrono::Duration::seconds(rng.next(3 * 86_400 + 3600) as i64);
        let len = match rng.next(5) {
            0 => rng.next(90),
            1 => rng.next(1200),
            // Just over a minute across a quarter-hour boundary: under the Cume minimum in
            // each quarter-hour, over it in the hour.
            2 => {
                let q = (from.timestamp() / 900 + 1) * 900;
                from = chrono::DateTime::from_timestamp(q - 30 - rng.next(25) as i64, 0).unwrap();
                60 + rng.next(30)
            }
            _ => rng.next(3 * 3600),
        } as i64
            + 1;
        let to = from + chrono::Duration::seconds(len);
        let (t0, t1) = (from.to_rfc3339(), to.to_rfc3339());
        if rng.next(5) == 0 {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            plays.push(json!({
                "state": "playing", "objKey": "live", "source": "live",
                "time": t0, "time_end": t1,
                "user_identity": format!("anonymous:{who}"), "device_key": device_key(&ip, ua),
            }));
        } else {
            let (origin, path) = paths[rng.next(3) as usize];
            streams.push(connection(&ip, ua, origin, path, &t0, &t1));
        }
    }
    ingest(app, streams).await;
    if !plays.is_empty() {
        let token = app.token(&[Scope::Ingest]);
        let (status, body) = app
            .post_json(
                "/api/v1/stats/ingest/player-events/trusted/",
                &token,
                &json!({ "events": plays }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// The questions a dashboard asks of those three days.
fn questions() -> Vec<String> {
    let mut out = Vec::new();
    for interval in ["quarter_hour", "hour", "day", "week", "total"] {
        for by in ["", "&by=source", "&by=stream", "&by=station"] {
            for daypart in [
                "",
                "&daypart=mon-sun%2006:00-10:00",
                "&daypart=sun%2001:00-04:00",
            ] {
                out.push(format!(
                    "/api/v1/audience/?station=radio&from=2024-10-26&until=2024-10-29&interval={interval}{by}{daypart}"
                ));
            }
        }
    }
    // Off the grid at both ends: always computed from the sessions.
    out.push(
        "/api/v1/audience/?station=radio&from=2024-10-26T10:07:00Z&until=2024-10-27T13:00:30Z&interval=hour&by=source".into(),
    );
    out
}

async fn answers(app: &TestApp, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for q in questions() {
        let (status, body) = app.get_json(&q, token).await;
        assert_eq!(status, 200, "{q}: {body}");
        out.push(body);
    }
    out
}

fn assert_same_figures(rolled: &[Value], direct: &[Value], expect_rollups: bool) {
    let questions = questions();
    for ((q, r), d) in questions.iter().zip(rolled).zip(direct) {
        assert_eq!(d["rules"]["computed_from"], "sessions", "{q}");
        let off_grid = q.contains("T10:07");
        let want = if expect_rollups && !off_grid {
            "rollups"
        } else {
            "sessions"
        };
        assert_eq!(r["rules"]["computed_from"], want, "{q}");
        let (got, want) = (
            r["results"].as_array().unwrap(),
            d["results"].as_array().unwrap(),
        );
        assert_eq!(got.len(), want.len(), "{q}");
        if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
            panic!("{q}: rollups {g} but sessions {w}");
        }
        assert_eq!(r["rules"]["excluded"], d["rules"]["excluded"], "{q}");
    }
}

async fn run_audience_job(app: &TestApp, admin: &str) -> Value {
    let (status, body) = app
        .post_json("/api/v1/jobs/audience/run", admin, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["job"], "audience", "{body}");
    body
}

#[tokio::test]
async fn rollups_give_the_figures_computed_from_the_sessions_and_follow_late_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let read = app.token(&[Scope::Read]);
    station(&app, &admin).await;
    random_listening(&app, 7, 400).await;
    // Before any run: from the sessions, by the definitions (checked by hand above and second
    // by second in the unit tests).
    let direct = answers(&app, &read).await;
    assert!(
        direct[0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["cume"].as_u64().unwrap() > 0),
        "the data has listeners"
    );
    run_audience_job(&app, &admin).await;
    assert_same_figures(&answers(&app, &read).await, &direct, true);

    // Late listening inside the period: answered from the sessions until the job has run.
    random_listening(&app, 8, 60).await;
    let late = answers(&app, &read).await;
    assert_same_figures(&late, &late, false);
    assert_ne!(
        late[0]["results"], direct[0]["results"],
        "the late data counts"
    );
    let run = run_audience_job(&app, &admin).await;
    // Only the days the late data touched (three, with a day of player context either side).
    let days = run["results"][0]["rows_changed"].as_i64().unwrap();
    assert!((1..=7).contains(&days), "{run}");
    assert_same_figures(&answers(&app, &read).await, &late, true);
    // Listener numbers stay dense however often the same listeners are seen again (the
    // listener sets are bitsets over them).
    #[derive(diesel::QueryableByName)]
    struct Dense {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        dense: bool,
    }
    let d: Dense = diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT max(id) = count(*) AS dense FROM audience_listener"),
        &mut app.db.conn(),
    )
    .unwrap();
    assert!(d.dense, "listener ids have gaps");

    // Other rules (a mount less): the old rollups are not read; the next run rebuilds them.
    let (status, body) = app
        .put_json(
            STREAMS,
            &admin,
            &json!([
                {"kind": "icecast", "pattern": "/live.mp3"},
                {"kind": "hls", "pattern": "/hls/live/"},
                {"kind": "player", "pattern": "live"},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fewer = answers(&app, &read).await;
    assert_same_figures(&fewer, &fewer, false);
    assert_ne!(fewer[0]["results"], late[0]["results"]);
    run_audience_job(&app, &admin).await;
    assert_same_figures(&answers(&app, &read).await, &fewer, true);
    app.stop().await;
}
