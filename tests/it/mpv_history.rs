//! mpv-history-daemon files give the same plays through `airlog mpv parse` as through
//! mpv-history-daemon's own parser (installed from PyPI by `make deps`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{private_temp_dir, stdout_ok};

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn theirs(files: &[&Path], all: bool) -> Value {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "mpv_history_daemon", "parse"]);
    if all {
        cmd.arg("--all-events");
    }
    let out = cmd
        .args(files)
        .env("HOME", "/home/dj")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "mpv-history-daemon is installed (make deps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ours(files: &[&Path], all: bool) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlog"));
    cmd.args(["mpv", "parse"]);
    if all {
        cmd.arg("--all-events");
    }
    serde_json::from_str(&stdout_ok(cmd.args(files).env("HOME", "/home/dj"))).unwrap()
}

/// Floats compared to the microsecond: the two parsers sum pauses in different orders.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-6
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Hand-made mpv-history-daemon files: a plain one and a merged one.
fn sample_files(dir: &Path) -> (PathBuf, PathBuf) {
    // Play, pause/resume, seek, next file, a stream, quit while paused.
    let one = write(
        dir,
        "1614905900000000000.json",
        &json!({
            "1614905901.1": {"socket-added": 1614905901.0},
            "1614905901.2": {"working-directory": "/home/dj/Music"},
            "1614905901.3": {"playlist-count": 3},
            "1614905901.4": {"is-paused": false},
            "1614905901.45": {"resumed": {"percent-pos": 0.0}},
            "1614905901.5": {"playlist-pos": 0},
            "1614905901.6": {"path": "album/01 - One.mp3"},
            "1614905901.7": {"media-title": "One"},
            "1614905901.8": {"metadata": {"title": "One", "artist": "Band", "album": "A", "date": "1981"}},
            "1614905901.9": {"duration": 200.5},
            "1614905950.25": {"paused": {"percent-pos": 24.5}},
            "1614905970.75": {"resumed": {"percent-pos": 24.5}},
            "1614906080.0": {"seek": {"percent-pos": 90.0}},
            "1614906100.0": {"eof": null},
            "1614906100.2": {"playlist-pos": 1},
            "1614906100.3": {"path": "album/02 - Two.mp3"},
            "1614906100.4": {"duration": 30.0},
            "1614906105.0": {"eof": null},
            "1614906105.2": {"playlist-pos": 2},
            "1614906105.3": {"path": "https://radio.example/live.mp3"},
            "1614906105.4": {"media-title": "Live radio"},
            "1614906300.0": {"paused": {"percent-pos": null}},
            "1614906400.0": {"mpv-quit": 1614906400.0}
        }),
    );
    // A merged file: an old-style stream (no is-paused), and one that crashed.
    let merged = write(
        dir,
        "merged.json",
        &json!({"mapping": {
            "1611383220380934268.json": {
                "1611383221.0": {"playlist-pos": 0},
                "1611383221.1": {"path": "/srv/podcast.ogg"},
                "1611383221.2": {"duration": 3600.0},
                "1611383225.0": {"resumed": {"percent-pos": 0.1}},
                "1611383300.0": {"paused": {"percent-pos": 2.0}},
                "1611383400.0": {"resumed": {"percent-pos": 2.0}},
                "1611385000.0": {"eof": null}
            },
            "1611390000000000000.json": {
                "1611390001.0": {"playlist-pos": 0},
                "1611390001.1": {"path": "/srv/show.ogg"},
                "1611390001.2": {"duration": 7200.0},
                "1611390400.0": {"seek": {"percent-pos": 10.0}}
            }
        }}),
    );
    (one, merged)
}

#[test]
fn hand_made_history_files_parse_as_mpv_history_daemon_parses_them() {
    let dir = private_temp_dir("airlog-mpv-history");
    let (one, merged) = sample_files(&dir);
    for all in [true, false] {
        let files = [one.as_path(), merged.as_path()];
        let (a, b) = (ours(&files, all), theirs(&files, all));
        assert!(
            same(&a, &b),
            "all_events={all}\nairlog: {a:#}\nmpv-history-daemon: {b:#}"
        );
    }
    let all = ours(&[one.as_path(), merged.as_path()], true);
    assert_eq!(all.as_array().unwrap().len(), 5);
    let listened = ours(&[one.as_path(), merged.as_path()], false);
    let paths: Vec<&str> = listened
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/home/dj/Music/album/01 - One.mp3",
            "https://radio.example/live.mp3",
            "/srv/podcast.ogg",
            "/srv/show.ogg"
        ],
        "the 5 s of a 30 s track are not listening"
    );
    assert_eq!(listened[1]["pause_duration"], 100.0, "quit while paused");
}

#[tokio::test]
async fn imports_are_idempotent_items_survive_renames_and_plays_are_listed() {
    let app = crate::helpers::TestApp::spawn().await;
    let read = app.token(&[airlog::auth::Scope::Read]);
    let dir = private_temp_dir("airlog-mpv-import");
    let (one, merged) = sample_files(&dir);
    // A real file, played under one name, then renamed and played again.
    let song = crate::helpers::tone(&dir, "song", 2);
    let first = write(
        &dir,
        "1700000000000000000.json",
        &json!({
            "1700000000.5": {"playlist-pos": 0}, "1700000000.6": {"path": song.display().to_string()},
            "1700000000.7": {"duration": 120.0}, "1700000100.0": {"eof": null}, "1700000100.1": {"mpv-quit": 1.0}
        }),
    );
    let renamed = dir.join("renamed.ogg");
    std::fs::rename(&song, &renamed).unwrap();
    let second = write(
        &dir,
        "1700001000000000000.json",
        &json!({
            "1700001000.5": {"playlist-pos": 0}, "1700001000.6": {"path": renamed.display().to_string()},
            "1700001000.7": {"duration": 120.0}, "1700001010.0": {"eof": null}, "1700001010.1": {"mpv-quit": 1.0}
        }),
    );
    // The first file's play must be recorded while it still exists under its first name.
    let env = [("DATABASE_URL", app.db.url.as_str()), ("HOME", "/home/dj")];
    std::fs::rename(&renamed, &song).unwrap();
    let (code, out, err) =
        crate::helpers::airlog_cmd(&["mpv", "import", first.to_str().unwrap()], &env, &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 plays in 1 files, 1 new"), "{out}");
    std::fs::rename(&song, &renamed).unwrap();
    let files: Vec<&str> = [&one, &merged, &second]
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect();
    for round in 0..2 {
        let mut args = vec!["mpv", "import"];
        args.extend(&files);
        let (code, out, err) = crate::helpers::airlog_cmd(&args, &env, &dir);
        assert_eq!(code, 0, "{err}");
        let new = if round == 0 { 6 } else { 0 };
        assert!(
            out.contains(&format!("6 plays in 3 files, {new} new")),
            "{out}"
        );
    }

    let get = |q: String| {
        let (app, read) = (&app, &read);
        async move { app.get_ok(&format!("/api/v1/plays/{q}"), read).await }
    };
    let all = get(String::new()).await;
    assert_eq!(all["count"], 7);
    let song_plays: Vec<&Value> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["path"].as_str().unwrap().ends_with(".ogg")
                && p["path"].as_str().unwrap().contains("airlog-mpv-import")
        })
        .collect();
    assert_eq!(song_plays.len(), 2);
    assert_eq!(
        song_plays[0]["itemId"], song_plays[1]["itemId"],
        "the renamed file keeps its item"
    );
    assert_eq!(song_plays[1]["path"], renamed.display().to_string());
    assert_eq!(
        get("?listened=true".into()).await["count"],
        5,
        "4 from the samples and the 100 s play of the song"
    );
    assert_eq!(
        get("?skipped=true".into()).await["count"].as_i64().unwrap(),
        7 - get("?skipped=false".into()).await["count"]
            .as_i64()
            .unwrap()
    );
    let item = song_plays[0]["itemId"].as_i64().unwrap();
    assert_eq!(get(format!("?item={item}")).await["count"], 2);
    let paged = get("?limit=3".into()).await;
    assert!(paged["next"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn ratings_attach_to_what_plays_and_item_history_lists_everything() {
    let app = crate::helpers::TestApp::spawn().await;
    let ingest = app.token(&[airlog::auth::Scope::Ingest]);
    let read = app.token(&[airlog::auth::Scope::Read]);
    let dir = private_temp_dir("airlog-ratings");
    let song = crate::helpers::tone(&dir, "song", 2);
    let played = write(
        &dir,
        "1700000000000000000.json",
        &json!({
            "1700000000.5": {"playlist-pos": 0}, "1700000000.6": {"path": song.display().to_string()},
            "1700000000.7": {"duration": 120.0}, "1700000100.0": {"eof": null}, "1700000100.1": {"mpv-quit": 1.0}
        }),
    );
    let env = [("DATABASE_URL", app.db.url.as_str())];
    let (code, _, err) =
        crate::helpers::airlog_cmd(&["mpv", "import", played.to_str().unwrap()], &env, &dir);
    assert_eq!(code, 0, "{err}");
    // mpv instance "studio" is playing the song right now.
    use diesel::RunQueryDsl;
    diesel::sql_query("INSERT INTO mpv_event (instance, seq, time, event, data) VALUES ('studio', 1, now() - interval '30 seconds', 'path', $1)")
        .bind::<diesel::sql_types::Jsonb, _>(json!(song.display().to_string()))
        .execute(&mut app.db.conn())
        .unwrap();

    let ratings = "/api/v1/ratings/";
    assert_eq!(
        app.post_json(ratings, &read, &json!({"rating": 4})).await.0,
        403
    );
    let (status, body) = app.post_json(ratings, &ingest, &json!({"rating": 6})).await;
    assert_eq!(
        (status, body["details"][0]["field"].as_str()),
        (400, Some("rating"))
    );
    let (status, rated) = app
        .post_json(
            ratings,
            &ingest,
            &json!({"rating": 5, "instance": "studio"}),
        )
        .await;
    assert_eq!(status, 201, "{rated}");
    let position = rated["positionS"].as_f64().unwrap();
    assert!(
        (29.0..40.0).contains(&position),
        "position in the play: {position}"
    );
    let item = rated["item"].as_i64().unwrap();
    let (status, _) = app
        .post_json(ratings, &ingest, &json!({"tag": "morning", "item": item}))
        .await;
    assert_eq!(status, 201);

    let history = |q: &str| {
        let (app, read, path) = (&app, &read, format!("/api/v1/items/{item}/history{q}"));
        async move { app.get_ok(&path, read).await }
    };
    let all = history("").await;
    let kinds: Vec<&str> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["tag", "rate", "play"], "newest first: {all:#}");
    assert_eq!(
        history("?type=rate").await["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let undo = app.request(
        reqwest::Method::DELETE,
        "/api/v1/ratings/last",
        Some(&ingest),
    );
    assert_eq!(undo.send().await.unwrap().status(), 204);
    let kinds: Vec<String> = history("").await["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["rate", "play"], "the last tag is undone");
    app.stop().await;
}

/// An instance imported before its live capture was stored: the live play, with mpv's own
/// boundaries, replaces the imported record of the same play, and only that one.
#[test]
fn a_live_play_replaces_the_imported_record_of_the_same_play() {
    use airlog::domain::play::{Play, Rules};
    use diesel::RunQueryDsl;
    let db = crate::helpers::TestDb::new();
    let mut c = db.conn();
    let play = |path: &str, start: f64, end: f64| Play {
        path: path.into(),
        is_stream: false,
        start_time: start,
        end_time: end,
        pause_duration: 0.0,
        media_duration: None,
        media_title: None,
        actions: vec![],
        metadata: Default::default(),
    };
    let rules = Rules::default();
    let item = airlog::db::mpv::item_for(&mut c, "/a.ogg", false, "", None).unwrap();
    let store = |c: &mut diesel::PgConnection, source: &str, key: &str, inst: &str, p: &Play| {
        airlog::db::mpv::insert_play(c, item, source, key, inst, p, None, &rules).unwrap()
    };
    // The daemon dated the first play from mpv's launch; a second play of /a.ogg came later.
    assert!(store(
        &mut c,
        "import",
        "i1",
        "100",
        &play("/a.ogg", 1000.0, 1010.0)
    ));
    assert!(store(
        &mut c,
        "import",
        "i2",
        "100",
        &play("/a.ogg", 1100.0, 1110.0)
    ));
    assert!(store(
        &mut c,
        "import",
        "i3",
        "other",
        &play("/a.ogg", 1000.0, 1010.0)
    ));
    assert!(store(
        &mut c,
        "live",
        "l1",
        "100",
        &play("/a.ogg", 1002.0, 1010.1)
    ));
    let keys: Vec<String> =
        diesel::sql_query("SELECT source_key AS path FROM mpv_play ORDER BY source_key")
            .load::<KeyRow>(&mut c)
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect();
    assert_eq!(keys, ["i2", "i3", "l1"]);
    // And an import of the same play afterwards adds nothing.
    assert!(!store(
        &mut c,
        "import",
        "i1",
        "100",
        &play("/a.ogg", 1000.0, 1010.0)
    ));
}

#[derive(diesel::QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    path: String,
}
