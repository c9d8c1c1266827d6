//! The operator console: sign-in and sessions over plain HTTP, then the pages in a real
//! headless Chromium (Debian `chromium` + `chromium-driver`) through WebDriver.

use std::time::{Duration, Instant};

use airlog::auth::Scope;
use airlog::db::playout::{self, NewLog};
use chrono::Utc;
use diesel::RunQueryDsl;
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::helpers::{utc as t, TestApp};
use crate::webdriver::Browser;

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` among a response's Set-Cookie headers, with its attributes.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// The value of the first `<input name=NAME value=...>` in a page.
fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A station in Zurich (broadcast days from 04:00) with one catalogued sound.
async fn station(app: &TestApp) -> i64 {
    let admin = app.admin_token();
    let (status, body) = app
        .post_json(
            "/api/v1/stations/",
            &admin,
            &json!({"name": "main", "time_zone": "Europe/Zurich", "streamer": "none"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_json(
            "/api/v1/sounds/",
            &admin,
            &json!({"path": "/srv/show.ogg", "duration": 3600, "title": "Morning show", "type": "archive", "tracks": []}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_i64().unwrap();
    let (status, body) = app.get_json("/api/v1/stations/main", &admin).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_i64().unwrap()
}

/// Writes an ON_AIR entry as a monitor does; returns its id.
fn log_entry(app: &TestApp, station_id: i64, date: &str, title: &str) -> i64 {
    playout::insert_log(
        &mut app.db.conn(),
        &NewLog {
            station_id,
            r#type: "on_air".parse().unwrap(),
            date: t(date),
            source: "airlog_rotation",
            comment: title,
            path: Some(&format!("/srv/{title}.ogg")),
            tags: json!({"title": title, "artist": "The Band"}),
            ..NewLog::default()
        },
    )
    .unwrap()
    .unwrap()
}

/// Signs in over HTTP with `token`; the session cookie's value.
pub async fn sign_in(app: &TestApp, token: &str) -> String {
    let c = client();
    let res = c.get(app.url("/console/signin")).send().await.unwrap();
    let pairing = cookie_value(&set_cookie(&res, "airlog_console_signin").unwrap());
    let html = res.text().await.unwrap();
    let form = input_value(&html, "form");
    let res = c
        .post(app.url("/console/signin"))
        .header("Cookie", format!("airlog_console_signin={pairing}"))
        .form(&[("token", token), ("form", &form), ("next", "/console/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    cookie_value(&set_cookie(&res, "airlog_console").unwrap())
}

pub async fn get(
    app: &TestApp,
    path: &str,
    session: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut req = client().get(app.url(path));
    if let Some(s) = session {
        req = req.header("Cookie", format!("airlog_console={s}"));
    }
    let res = req.send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), res.text().await.unwrap(), location)
}

async fn post(app: &TestApp, path: &str, session: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = client()
        .post(app.url(path))
        .header("Cookie", format!("airlog_console={session}"))
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn console_pages_need_a_session_made_from_a_valid_token_and_forms_need_their_csrf_token() {
    let app = TestApp::spawn().await;
    let station_id = station(&app).await;
    let c = client();

    // No cookie: to the sign-in page, which brings the browser back afterwards.
    let (status, _, location) = get(&app, "/console/stations/main/log?day=2024-11-05", None).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/console/signin?next=%2Fconsole%2Fstations%2Fmain%2Flog%3Fday%3D2024-11-05")
    );
    let (status, _, _) = get(&app, "/console/stations/main/log", Some(&"0".repeat(64))).await;
    assert_eq!(status, 303, "an unknown session is no session");

    // A bad token is refused on the page; a form not paired with its page is refused.
    let res = c.get(app.url("/console/signin")).send().await.unwrap();
    let pairing = cookie_value(&set_cookie(&res, "airlog_console_signin").unwrap());
    let form = input_value(&res.text().await.unwrap(), "form");
    let res = c
        .post(app.url("/console/signin"))
        .header("Cookie", format!("airlog_console_signin={pairing}"))
        .form(&[("token", "f".repeat(40).as_str()), ("form", &form)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookie(&res, "airlog_console").is_none());
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("That token is not valid."));
    let read = app.token(&[Scope::Read]);
    let res = c
        .post(app.url("/console/signin"))
        .form(&[("token", read.as_str()), ("form", &form)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "no pairing cookie");
    let ingest = app.token(&[Scope::Ingest]);
    let res = c
        .post(app.url("/console/signin"))
        .header("Cookie", format!("airlog_console_signin={pairing}"))
        .form(&[("token", ingest.as_str()), ("form", &form)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "an ingest token cannot read");

    // A good token: an HttpOnly, SameSite=Strict cookie; the database keeps only its hash.
    let res = c
        .post(app.url("/console/signin"))
        .header("Cookie", format!("airlog_console_signin={pairing}"))
        .form(&[
            ("token", read.as_str()),
            ("form", &form),
            ("next", "/console/stations/main/log"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/console/stations/main/log");
    let cookie = set_cookie(&res, "airlog_console").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie_value(&cookie);
    assert_eq!(session.len(), 64);
    let stored: Vec<(String,)> = diesel::sql_query("SELECT id_hash FROM console_session")
        .load::<IdHash>(&mut app.db.conn())
        .unwrap()
        .into_iter()
        .map(|r| (r.id_hash,))
        .collect();
    assert_eq!(stored, [(airlog::auth::hash_token(&session),)]);
    assert!(!stored[0].0.contains(&session));

    let (status, html, _) = get(
        &app,
        "/console/stations/main/log?day=2024-11-05",
        Some(&session),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-testid=\"log\""));
    assert!(!html.contains(&read), "no secret in pages");
    let (status, html, _) = get(&app, "/console/stations/nope/", Some(&session)).await;
    assert_eq!(status, 404);
    assert!(
        html.contains("There is no station named"),
        "an HTML error page: {html}"
    );

    // Forms: without the session's form token 403, with it a read-only session is still refused.
    let d = app
        .post_json(
            "/api/v1/diffusions/",
            &app.admin_token(),
            &json!({"station": "main", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z", "sounds": ["/srv/show.ogg"]}),
        )
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    let cancel = format!("/console/stations/main/diffusions/{d}/cancel");
    let (status, _) = post(&app, &cancel, &session, &[]).await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, _) = post(&app, &cancel, &session, &[("csrf", &"0".repeat(64))]).await;
    assert_eq!(status, 403, "a wrong CSRF token");
    let (_, html, _) = get(&app, "/console/stations/main/schedule", Some(&session)).await;
    let csrf = input_value(&html, "csrf");
    let (status, html) = post(&app, &cancel, &session, &[("csrf", &csrf)]).await;
    assert_eq!(status, 403, "read-only");
    assert!(html.contains("may look but not change"), "{html}");
    let (_, diffusion) = app
        .get_json(&format!("/api/v1/diffusions/{d}"), &read)
        .await;
    assert_eq!(diffusion["decision"], Value::Null, "nothing changed");

    // Revoking the token ends its sessions; signing out ends one.
    let admin = app.admin_token();
    let admin_session = sign_in(&app, &admin).await;
    let (_, html, _) = get(
        &app,
        "/console/stations/main/schedule",
        Some(&admin_session),
    )
    .await;
    let admin_csrf = input_value(&html, "csrf");
    let (status, _) = post(&app, &cancel, &admin_session, &[("csrf", &admin_csrf)]).await;
    assert_eq!(status, 303, "an admin cancels");
    let (_, diffusion) = app
        .get_json(&format!("/api/v1/diffusions/{d}"), &read)
        .await;
    assert_eq!(diffusion["decision"], "cancel");
    let (status, _) = post(
        &app,
        "/console/signout",
        &admin_session,
        &[("csrf", &admin_csrf)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(get(&app, "/console/", Some(&admin_session)).await.0, 303);
    diesel::sql_query("UPDATE api_token SET revoked_at = now() WHERE scopes = '{read}'")
        .execute(&mut app.db.conn())
        .unwrap();
    assert_eq!(get(&app, "/console/", Some(&session)).await.0, 303);

    // Console routes are not API operations.
    let (_, doc) = app.get_json("/api/v1/openapi.json", &read).await;
    assert!(!doc.to_string().contains("/console"));
    let _ = station_id;
    app.stop().await;
}

#[derive(diesel::QueryableByName)]
struct IdHash {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id_hash: String,
}

/// Signs in through the page, as a person does.
async fn browser_sign_in(b: &Browser, app: &TestApp, token: &str, to: &str) {
    b.goto(&app.url(to)).await;
    assert!(
        b.url().await.contains("/console/signin"),
        "{}",
        b.url().await
    );
    let field = b.find("input[name=token]").await;
    b.send_keys(&field, token).await;
    b.click(&b.find("form[data-testid=signin] button[type=submit]").await)
        .await;
    // The sign-in page has a main too: wait for the address to leave it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.url().await.contains("/console/signin") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.wait_for("main#main", Duration::from_secs(5)).await;
    assert!(
        b.url().await.ends_with(to),
        "back where it started: {}",
        b.url().await
    );
}

#[tokio::test]
async fn the_browser_shows_new_entries_live_walks_days_across_dst_cancels_as_admin_and_downloads_the_csv(
) {
    let app = TestApp::spawn().await;
    let station_id = station(&app).await;
    let read = app.token(&[Scope::Read]);
    // A browser loads two cores hard: tests that time fractions of a second wait meanwhile.
    let _turn = crate::helpers::heavy_load().await;
    let b = Browser::start(1366, 900).await;

    // Sign in, land on the now page of the station.
    browser_sign_in(&b, &app, &read, "/console/stations/main/").await;
    assert!(b
        .text_of("[data-testid=now]")
        .await
        .contains("Nothing logged yet"));

    // An entry written meanwhile (as the monitor writes it) appears without a reload, in the
    // panel and at the top of the list.
    b.execute("window.notReloaded = true;", json!([])).await;
    b.wait_for("[data-testid=live].on", Duration::from_secs(5))
        .await
        .expect("the live stream connects");
    let written = Instant::now();
    let id = log_entry(
        &app,
        station_id,
        &(Utc::now() - chrono::Duration::seconds(5)).to_rfc3339(),
        "Live one",
    );
    let took = b
        .wait_for(&format!("tr[data-entry-id='{id}']"), Duration::from_secs(2))
        .await
        .expect("the new entry is on the page within 2 s");
    eprintln!(
        "live entry on the now page after {took:?} (written {:?} ago)",
        written.elapsed()
    );
    b.wait_for("[data-testid=now-title]", Duration::from_secs(2))
        .await
        .expect("the panel shows it");
    assert_eq!(b.text_of("[data-testid=now-title]").await, "Live one");
    assert_eq!(
        b.execute("return window.notReloaded === true;", json!([]))
            .await,
        true
    );

    // The same on the log page of today, newest first, with a filter that keeps it out.
    b.goto(&app.url("/console/stations/main/log")).await;
    b.execute("window.notReloaded = true;", json!([])).await;
    b.wait_for("[data-testid=live].on", Duration::from_secs(5))
        .await
        .expect("connected");
    let id2 = log_entry(&app, station_id, &Utc::now().to_rfc3339(), "Live two");
    b.wait_for(
        &format!("#log tbody tr:first-child[data-entry-id='{id2}']"),
        Duration::from_secs(2),
    )
    .await
    .expect("on top within 2 s");
    assert_eq!(
        b.execute("return window.notReloaded === true;", json!([]))
            .await,
        true
    );
    b.goto(&app.url("/console/stations/main/log?type=start"))
        .await;
    b.wait_for("[data-testid=live].on", Duration::from_secs(5))
        .await;
    let id3 = log_entry(&app, station_id, &Utc::now().to_rfc3339(), "Live three");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        b.find_all(&format!("tr[data-entry-id='{id3}']"))
            .await
            .is_empty(),
        "filtered out"
    );

    // The broadcast day of 2024-10-26 in Zurich runs 25 hours (04:00 to 04:00, clocks back at
    // 03:00 on the 27th); 02:30 happens twice and both are told apart.
    let early = log_entry(&app, station_id, "2024-10-27T00:30:00Z", "First 0230");
    let late = log_entry(&app, station_id, "2024-10-27T01:30:00Z", "Second 0230");
    let next_day = log_entry(&app, station_id, "2024-10-27T03:00:00Z", "Next day 0400");
    b.goto(&app.url("/console/stations/main/log?day=2024-10-25"))
        .await;
    assert!(
        b.find_all("[data-testid=day-hours]").await.is_empty(),
        "a 24-hour day"
    );
    b.click(&b.find("[data-testid=next-day]").await).await;
    b.wait_for("[data-testid=day-hours]", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(b.url().await.contains("day=2024-10-26"));
    assert!(b
        .text_of("[data-testid=day-hours]")
        .await
        .starts_with("25 hours"));
    let rows = b.text_of("#log tbody").await;
    assert!(
        rows.contains("02:30:00 (+02:00)") && rows.contains("02:30:00 (+01:00)"),
        "{rows}"
    );
    assert!(
        rows.find("Second 0230").unwrap() < rows.find("First 0230").unwrap(),
        "newest first"
    );
    assert!(b
        .find_all(&format!("tr[data-entry-id='{next_day}']"))
        .await
        .is_empty());
    b.click(&b.find("[data-testid=next-day]").await).await;
    b.wait_for(
        &format!("tr[data-entry-id='{next_day}']"),
        Duration::from_secs(5),
    )
    .await
    .expect("04:00 belongs to the next day");
    assert!(b
        .find_all(&format!("tr[data-entry-id='{early}']"))
        .await
        .is_empty());
    let _ = late;

    // The day's CSV, fetched with the browser's session cookie.
    let csv = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('[data-testid=csv]').href.replace('day=2024-10-27', 'day=2024-10-26'))
               .then(r => r.text().then(t => done([r.status, r.headers.get('content-disposition'), t])));",
            json!([]),
        )
        .await;
    assert_eq!(csv[0], 200, "{csv}");
    assert_eq!(csv[1], "attachment; filename=\"main-asrun-2024-10-26.csv\"");
    let lines: Vec<&str> = csv[2].as_str().unwrap().lines().collect();
    assert_eq!(
        lines[0],
        "id,time,type,title,artist,path,source,sound_id,track_id,diffusion_id,comment"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].starts_with(&format!(
        "{early},2024-10-27T02:30:00+02:00,on_air,First 0230,The Band,"
    )));
    assert!(lines[2].starts_with(&format!(
        "{late},2024-10-27T02:30:00+01:00,on_air,Second 0230,"
    )));

    // Read-only: no cancel button, and a cancellation posted anyway is refused.
    let admin = app.admin_token();
    let d = app
        .post_json(
            "/api/v1/diffusions/",
            &admin,
            &json!({"station": "main", "start": "2030-03-01T10:00:00Z", "end": "2030-03-01T11:00:00Z",
                    "title": "Future show", "sounds": ["/srv/show.ogg"]}),
        )
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    b.goto(&app.url("/console/stations/main/schedule?day=2030-03-01"))
        .await;
    let row = format!("tr[data-diffusion-id='{d}']");
    assert!(b.text_of(&row).await.contains("Future show"));
    assert!(b.find_all("[data-testid=cancel]").await.is_empty());
    let refused = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch(arguments[0], {method: 'POST', body: new URLSearchParams({csrf})}).then(r => done(r.status));",
            json!([format!("/console/stations/main/diffusions/{d}/cancel")]),
        )
        .await;
    assert_eq!(refused, 403);

    // An admin cancels it from the page; the schedule shows its fate.
    b.click(&b.find(".signout button").await).await;
    b.wait_for("form[data-testid=signin]", Duration::from_secs(5))
        .await
        .unwrap();
    browser_sign_in(
        &b,
        &app,
        &admin,
        "/console/stations/main/schedule?day=2030-03-01",
    )
    .await;
    assert_eq!(
        b.execute(
            &format!("return document.querySelector(\"{row}\").dataset.fate;"),
            json!([])
        )
        .await,
        "pending"
    );
    b.click(&b.find(&format!("{row} [data-testid=cancel]")).await)
        .await;
    b.wait_for(
        &format!("{row}[data-fate=cancelled]"),
        Duration::from_secs(5),
    )
    .await
    .expect("cancelled");
    let (_, diffusion) = app
        .get_json(&format!("/api/v1/diffusions/{d}"), &read)
        .await;
    assert_eq!(diffusion["decision"], "cancel");

    b.quit().await;
    app.stop().await;
}

/// A busy station for the timing and the screenshots: a 24-hour broadcast day two or more days
/// back (out of reach of today's entries, whatever the time of day) holds 2 000
/// entries, today has a sound on air with a track, diffusions in every state, listeners,
/// audience and job runs.
struct Busy {
    app: TestApp,
    admin: String,
    busy_day: chrono::NaiveDate,
}

async fn busy_station() -> Busy {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let station_id = station(&app).await;
    let (status, body) = app
        .post_json(
            "/api/v1/sounds/",
            &admin,
            &json!({"path": "/srv/morning/2026-12-06.ogg", "duration": 7200, "title": "Morning show", "type": "archive", "program": "morning",
                    "tracks": [{"timestamp": 0, "artist": "Hania Rani", "title": "Eden"}, {"timestamp": 600, "artist": "Nils Frahm", "title": "Says"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sound_id = body["id"].as_i64().unwrap();
    let track_ids: Vec<i64> = body["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let (status, body) = app
        .put_json(
            "/api/v1/stations/main/streams",
            &admin,
            &json!([{"kind": "icecast", "pattern": "/live.mp3"}, {"kind": "player", "pattern": "live"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .put_json(
            "/api/v1/stations/main/dayparts",
            &admin,
            &json!({"morning": "mon-fri 06:00-10:00", "evening": "mon-sun 18:00-22:00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let now = Utc::now();
    let tz: chrono_tz::Tz = "Europe/Zurich".parse().unwrap();
    let today = airlog::broadcast::day_of(now, 4, tz);
    let mut busy_day = today - chrono::Duration::days(2);
    while {
        let (a, b) = airlog::broadcast::day_bounds(busy_day, 4, tz);
        b - a != chrono::Duration::hours(24)
    } {
        busy_day = busy_day.pred_opt().unwrap();
    }
    let (from, until) = airlog::broadcast::day_bounds(busy_day, 4, tz);
    let mut c = app.db.conn();
    // 2 000 sounds spread over that broadcast day, as a music rotation logs them.
    diesel::sql_query(
        "INSERT INTO onair_log (station_id, type, date, source, comment, path, tags) \
         SELECT $1, 'on_air', $2 + (i * ($3 - $2) / 2000), 'airlog_rotation', \
                a.artist || ' - Song ' || i, '/srv/music/' || i || '.ogg', \
                jsonb_build_object('title', 'Song ' || i, 'artist', a.artist) \
         FROM generate_series(0, 1999) AS i \
         CROSS JOIN LATERAL (SELECT (ARRAY['Hania Rani', 'Nils Frahm', 'Ólafur Arnalds', 'Sophie Hunger', 'Erika de Casier'])[1 + i % 5] AS artist) a",
    )
    .bind::<diesel::sql_types::BigInt, _>(station_id)
    .bind::<diesel::sql_types::Timestamptz, _>(from)
    .bind::<diesel::sql_types::Timestamptz, _>(until)
    .execute(&mut c)
    .unwrap();
    assert_eq!(
        until - from,
        chrono::Duration::hours(24),
        "yesterday was no DST day"
    );

    // Both 02:30 of the night the clocks went back.
    log_entry(&app, station_id, "2024-10-27T00:30:00Z", "First 0230");
    log_entry(&app, station_id, "2024-10-27T01:30:00Z", "Second 0230");
    // Today: earlier music, then the morning show started 20 minutes ago, its second track on.
    for (ago, title) in [
        (95, "Eden Roc"),
        (70, "Northern Lights"),
        (45, "A Song For Snow"),
    ] {
        log_entry(
            &app,
            station_id,
            &(now - chrono::Duration::minutes(ago)).to_rfc3339(),
            title,
        );
    }
    let d = |start: i64, end: i64, title: &str| {
        json!({"station": "main", "start": (now + chrono::Duration::minutes(start)).to_rfc3339(),
               "end": (now + chrono::Duration::minutes(end)).to_rfc3339(), "title": title,
               "sounds": ["/srv/morning/2026-12-06.ogg"]})
    };
    let running = app
        .post_json("/api/v1/diffusions/", &admin, &d(-20, 100, "Morning show"))
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    let cancelled = app
        .post_json("/api/v1/diffusions/", &admin, &d(-200, -140, "Early news"))
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    app.post_json(
        "/api/v1/diffusions/",
        &admin,
        &d(100, 160, "Lunch magazine"),
    )
    .await;
    app.post_json("/api/v1/diffusions/", &admin, &d(160, 220, "Afternoon mix"))
        .await;
    let start = now - chrono::Duration::minutes(20);
    playout::insert_log(
        &mut c,
        &NewLog {
            station_id,
            r#type: "start".parse().unwrap(),
            date: start,
            comment: "Morning show",
            diffusion_id: Some(running),
            tags: json!({}),
            ..NewLog::default()
        },
    )
    .unwrap();
    let play = playout::insert_log(
        &mut c,
        &NewLog {
            station_id,
            r#type: "on_air".parse().unwrap(),
            date: start,
            source: "airlog_diffusions",
            comment: "Morning show",
            path: Some("/srv/morning/2026-12-06.ogg"),
            sound_id: Some(sound_id),
            diffusion_id: Some(running),
            tags: json!({"title": "Morning show"}),
            ..NewLog::default()
        },
    )
    .unwrap()
    .unwrap();
    for (i, (track, artist, title)) in [
        (track_ids[0], "Hania Rani", "Eden"),
        (track_ids[1], "Nils Frahm", "Says"),
    ]
    .into_iter()
    .enumerate()
    {
        playout::insert_log(
            &mut c,
            &NewLog {
                station_id,
                r#type: "on_air".parse().unwrap(),
                date: start + chrono::Duration::minutes(10 * i as i64),
                source: "airlog_diffusions",
                comment: &format!("{artist} - {title}"),
                sound_id: Some(sound_id),
                track_id: Some(track),
                parent_id: Some(play),
                tags: json!({"title": title, "artist": artist}),
                ..NewLog::default()
            },
        )
        .unwrap();
    }
    let early = playout::diffusion(&mut c, cancelled).unwrap();
    playout::cancel_diffusion(
        &mut c,
        station_id,
        &early,
        now - chrono::Duration::minutes(199),
    )
    .unwrap();

    // Listeners: Icecast connections over the last day, and players heard from just now.
    let ingest = app.token(&[Scope::Ingest]);
    let mut events = Vec::new();
    for i in 0..240i64 {
        let start = now - chrono::Duration::minutes(24 * 60 - i * 6);
        let len = (10 + (i * 37) % 90).min((now - start).num_minutes());
        events.push(json!({"origin": "icecast", "ip": format!("192.0.2.{}", i % 200 + 1), "path": "/live.mp3", "status": 200,
            "bytes_sent": 100000, "user_agent": "VLC/3.0.18", "referer": "",
            "time_start": start.to_rfc3339(), "time_end": (start + chrono::Duration::minutes(len)).to_rfc3339()}));
    }
    let (status, body) = app
        .post_json(
            "/api/v1/stats/ingest/stream-events/",
            &ingest,
            &json!(events),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (i, source) in ["live", "live", "live", "on-demand"].iter().enumerate() {
        airlog::db::player_events::heartbeat(
            &mut c,
            &format!("ZGV2{i}-0123456789"),
            "anonymous",
            source.parse().unwrap(),
            None,
            true,
        )
        .unwrap();
    }
    let (status, body) = app
        .post_json("/api/v1/jobs/all/run", &admin, &json!({}))
        .await;
    assert!(status < 300, "{status} {body}");
    Busy {
        app,
        admin,
        busy_day,
    }
}

/// Fetches `path` `n` times with the session; the status, the last body and the median time.
async fn timed(app: &TestApp, session: &str, path: &str, n: usize) -> (u16, String, Duration) {
    let c = client();
    let mut times = Vec::new();
    let mut last = (0, String::new());
    for _ in 0..n {
        let started = Instant::now();
        let res = c
            .get(app.url(path))
            .header("Cookie", format!("airlog_console={session}"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        times.push(started.elapsed());
        last = (status, body);
    }
    times.sort();
    (last.0, last.1, times[times.len() / 2])
}

#[tokio::test]
async fn pages_of_a_day_of_two_thousand_entries_are_measured() {
    let busy = busy_station().await;
    let _quiet = crate::helpers::timing().await;
    let session = sign_in(&busy.app, &busy.admin).await;
    let day = busy.busy_day;
    let mut report = Vec::new();
    for (what, path, rows) in [
        ("now page", "/console/stations/main/".to_string(), None),
        (
            "log page, first 200 of 2000",
            format!("/console/stations/main/log?day={day}"),
            Some(200),
        ),
        (
            "log page, ON AIR filter",
            format!("/console/stations/main/log?day={day}&type=on_air"),
            Some(200),
        ),
        (
            "print view, 2000",
            format!("/console/stations/main/log/print?day={day}"),
            Some(2000),
        ),
        (
            "schedule",
            "/console/stations/main/schedule".to_string(),
            None,
        ),
        (
            "audience",
            "/console/stations/main/audience".to_string(),
            None,
        ),
        ("health", "/console/stations/main/health".to_string(), None),
    ] {
        let (status, body, took) = timed(&busy.app, &session, &path, 7).await;
        assert_eq!(status, 200, "{what}: {body}");
        if let Some(n) = rows {
            assert_eq!(body.matches("data-entry-id=").count(), n, "{what}");
        }
        report.push(format!("{what}: {:.1} ms", took.as_secs_f64() * 1000.0));
    }
    let (status, csv, took) = timed(
        &busy.app,
        &session,
        &format!("/console/stations/main/log.csv?day={day}"),
        5,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), 2001);
    report.push(format!("CSV, 2000: {:.1} ms", took.as_secs_f64() * 1000.0));
    // The keyset walk reaches the day's end in 10 pages of 200.
    let (_, mut page, _) = timed(
        &busy.app,
        &session,
        &format!("/console/stations/main/log?day={day}"),
        1,
    )
    .await;
    let mut seen = page.matches("data-entry-id=").count();
    while let Some(at) = page.find("data-testid=\"older\" href=\"") {
        let rest = &page[at + 26..];
        let href = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
        page = timed(&busy.app, &session, &href, 1).await.1;
        seen += page.matches("data-entry-id=").count();
    }
    assert_eq!(seen, 2000);
    eprintln!(
        "console page times (median of 7, debug build, whole request over HTTP):\n  {}",
        report.join("\n  ")
    );
    busy.app.stop().await;
}

/// `make screenshots`: every page at desktop (1366x900) and phone (390x844) width, into
/// `./screenshots/` (not committed).
#[tokio::test]
#[ignore = "writes screenshots; run by `make screenshots`"]
async fn screenshots() {
    let busy = busy_station().await;
    let app = &busy.app;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let _turn = crate::helpers::heavy_load().await;
    let mut b = Browser::start(1366, 900).await;
    b.goto(&app.url("/console/signin")).await;
    std::fs::write(
        dir.join("signin-desktop.png"),
        b.screenshot_full(1366, 900).await,
    )
    .unwrap();
    browser_sign_in(&b, app, &busy.admin, "/console/stations/main/").await;
    let day = busy.busy_day;
    let pages = [
        ("now", "/console/stations/main/".to_string()),
        ("log-today", "/console/stations/main/log".to_string()),
        (
            "log-busy-day",
            format!("/console/stations/main/log?day={day}"),
        ),
        (
            "log-dst-day",
            "/console/stations/main/log?day=2024-10-26".to_string(),
        ),
        (
            "print",
            format!("/console/stations/main/log/print?day={day}&type=all"),
        ),
        ("schedule", "/console/stations/main/schedule".to_string()),
        ("audience", "/console/stations/main/audience".to_string()),
        ("health", "/console/stations/main/health".to_string()),
        ("error", "/console/stations/nope/".to_string()),
    ];
    for (width, height, label) in [(1366, 900, "desktop"), (390, 844, "phone")] {
        b.resize(width, height).await;
        for (name, path) in &pages {
            b.goto(&app.url(path)).await;
            // Let the live stream connect and the page settle.
            tokio::time::sleep(Duration::from_millis(700)).await;
            let png = if name.starts_with("log-busy") || *name == "print" {
                // The first screen is what matters; a 2 000-row page would be a metre long.
                b.screenshot().await
            } else {
                b.screenshot_full(width, height).await
            };
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
    }
    // The studio at night: the dark scheme, as the browser prefers it.
    b.resize(1366, 900).await;
    b.prefer_dark(true).await;
    for (name, path) in [&pages[0], &pages[3], &pages[6]] {
        b.goto(&app.url(path)).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let png = b.screenshot_full(1366, 900).await;
        std::fs::write(dir.join(format!("{name}-desktop-dark.png")), png).unwrap();
    }
    eprintln!("screenshots written to {}", dir.display());
    b.quit().await;
    busy.app.stop().await;
}

#[tokio::test]
async fn what_a_real_liquidsoap_monitor_logs_appears_on_the_open_log_page_within_two_seconds() {
    let dir = crate::helpers::private_temp_dir("airlog-console-ls");
    let tones: Vec<_> = ["one", "two", "three"]
        .iter()
        .map(|n| crate::helpers::tone(&dir, n, 3))
        .collect();
    let ls = crate::liquidsoap::Liquidsoap::start(
        &dir,
        &tones.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
    );
    let app = TestApp::spawn().await;
    // The station supervisor of the running app picks the station up at its next reload.
    playout::upsert_station(
        &mut app.db.conn(),
        &airlog::db::playout::StationRow {
            time_zone: "Europe/Zurich".into(),
            ..crate::helpers::station_row("main", "liquidsoap", ls.socket.display().to_string())
        },
    )
    .unwrap();
    let read = app.token(&[Scope::Read]);
    // A browser loads two cores hard: tests that time fractions of a second wait meanwhile.
    let _turn = crate::helpers::heavy_load().await;
    let b = Browser::start(1366, 900).await;
    browser_sign_in(&b, &app, &read, "/console/stations/main/log").await;
    b.execute("window.notReloaded = true;", json!([])).await;
    b.wait_for("[data-testid=live].on", Duration::from_secs(5))
        .await
        .expect("the live stream connects");
    let ids_on_page = || async {
        b.execute(
            "return [...document.querySelectorAll('#log tbody tr')].map(r => Number(r.dataset.entryId));",
            json!([]),
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect::<Vec<i64>>()
    };
    let before = ids_on_page().await;
    let mut lags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while lags.len() < 3 && Instant::now() < deadline {
        for id in ids_on_page().await {
            if before.contains(&id) || lags.iter().any(|(seen, _)| *seen == id) {
                continue;
            }
            let written: Vec<CreatedAt> =
                diesel::sql_query("SELECT created_at FROM onair_log WHERE id = $1")
                    .bind::<diesel::sql_types::BigInt, _>(id)
                    .load(&mut app.db.conn())
                    .unwrap();
            let lag = Utc::now() - written[0].created_at;
            lags.push((id, lag));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "entries of a real Liquidsoap monitor on the page after (written -> seen): {:?}",
        lags.iter()
            .map(|(_, l)| l.num_milliseconds())
            .collect::<Vec<_>>()
    );
    assert!(
        lags.len() >= 3,
        "the monitor logged and the page showed entries: {lags:?}"
    );
    for (id, lag) in &lags {
        assert!(
            *lag < chrono::Duration::seconds(2),
            "entry {id} took {lag:?}"
        );
    }
    assert_eq!(
        b.execute("return window.notReloaded === true;", json!([]))
            .await,
        true
    );
    let titles = b.text_of("#log tbody").await;
    assert!(
        ["one", "two", "three"].iter().any(|t| titles.contains(t)),
        "{titles}"
    );
    b.quit().await;
    app.stop().await;
    drop(ls);
}

#[derive(diesel::QueryableByName)]
struct CreatedAt {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: chrono::DateTime<Utc>,
}

#[tokio::test]
async fn an_admin_adds_a_diffusion_in_the_station_time_and_a_trusted_proxy_signs_its_user_in() {
    let app = TestApp::spawn_with(|s| {
        s.console.proxy_user_header = "X-Forwarded-User".into();
        s.player.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    station(&app).await;
    let admin = sign_in(&app, &app.admin_token()).await;
    let (_, html, _) = get(
        &app,
        "/console/stations/main/schedule?day=2024-10-26",
        Some(&admin),
    )
    .await;
    let csrf = input_value(&html, "csrf");
    // 02:30 on 27 October 2024 happens twice in Zurich: the first (summer time) is taken.
    let form = [
        ("csrf", csrf.as_str()),
        ("title", "Night of the clocks"),
        ("start", "2024-10-27T02:30"),
        ("end", "2024-10-27T03:45"),
        ("type", "on_air"),
        ("sounds", "/srv/show.ogg\n"),
    ];
    let (status, body) = post(&app, "/console/stations/main/diffusions", &admin, &form).await;
    assert_eq!(status, 303, "{body}");
    let read = app.token(&[Scope::Read]);
    let (_, listed) = app
        .get_json(
            "/api/v1/diffusions/?station=main&from=2024-10-26T00:00:00Z",
            &read,
        )
        .await;
    let d = &listed["results"][0];
    assert_eq!(
        (d["title"].as_str(), d["sounds"][0].as_str()),
        (Some("Night of the clocks"), Some("/srv/show.ogg"))
    );
    assert_eq!(t(d["start"].as_str().unwrap()), t("2024-10-27T00:30:00Z"));
    assert_eq!(t(d["end"].as_str().unwrap()), t("2024-10-27T02:45:00Z"));
    let (_, html, _) = get(
        &app,
        "/console/stations/main/schedule?day=2024-10-26",
        Some(&admin),
    )
    .await;
    assert!(
        html.contains("Night of the clocks") && html.contains("data-fate=\"missed\""),
        "{html}"
    );
    // An unknown sound and a missing form token are refused; nothing is added.
    let mut bad = form;
    bad[5] = ("sounds", "/srv/nope.ogg");
    let (status, body) = post(&app, "/console/stations/main/diffusions", &admin, &bad).await;
    assert_eq!(status, 400);
    assert!(body.contains("is not in the catalogue"), "{body}");
    let (status, _) = post(
        &app,
        "/console/stations/main/diffusions",
        &admin,
        &form[1..],
    )
    .await;
    assert_eq!(status, 403);
    let (_, listed) = app
        .get_json(
            "/api/v1/diffusions/?station=main&from=2024-10-26T00:00:00Z",
            &read,
        )
        .await;
    assert_eq!(listed["results"].as_array().unwrap().len(), 1);

    // The proxy names its user: a session without a token, with the configured scope (read).
    let res = client()
        .get(app.url("/console/signin?next=%2Fconsole%2Fstations%2Fmain%2Fhealth"))
        .header("X-Forwarded-User", "anna")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/console/stations/main/health");
    let session = cookie_value(&set_cookie(&res, "airlog_console").unwrap());
    let (status, html, _) = get(&app, "/console/stations/main/health", Some(&session)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("anna") && !html.contains("data-testid=\"tokens\""),
        "read only: no tokens"
    );
    // A next that leaves the console is not followed.
    let res = client()
        .get(app.url("/console/signin?next=https%3A%2F%2Fevil.example%2F"))
        .header("X-Forwarded-User", "anna")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/console/");
    app.stop().await;
}

#[tokio::test]
async fn the_now_panel_and_health_say_since_when_the_streamer_is_unreachable() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.offline_after_s = 1;
        s.webhooks.allow_private = true;
    })
    .await;
    let admin = app.admin_token();
    // The monitor records outages for the webhooks; an endpoint must listen for them.
    let (status, body) = app
        .post_json(
            "/api/v1/webhooks/",
            &admin,
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["station_offline"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dir = crate::helpers::private_temp_dir("airlog-console-offline");
    playout::upsert_station(
        &mut app.db.conn(),
        &crate::helpers::station_row(
            "main",
            "liquidsoap",
            dir.join("no.sock").display().to_string(),
        ),
    )
    .unwrap();
    let session = sign_in(&app, &admin).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let panel = loop {
        let (status, html, _) = get(&app, "/console/stations/main/now", Some(&session)).await;
        assert_eq!(status, 200, "{html}");
        if html.contains("data-testid=\"unreachable\"") || Instant::now() > deadline {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(panel.contains("liquidsoap unreachable since"), "{panel}");
    let (_, health, _) = get(&app, "/console/stations/main/health", Some(&session)).await;
    assert!(health.contains("streamer unreachable since"), "{health}");
    assert!(
        health.contains("data-testid=\"webhooks\"") && health.contains("http://127.0.0.1:9<"),
        "the receiver's host only: {health}"
    );
    app.stop().await;
}
