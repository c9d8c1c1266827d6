use airlog::auth::Scope;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{json_of, TestApp};

const INGEST: &str = "/api/v1/stats/ingest/stream-events/";
const LIST: &str = "/api/v1/stats/stream-events/";

/// An event `n` seconds after 2024-11-05 11:00:00Z, lasting 60 s.
fn event(n: i64) -> Value {
    let start = 1_730_804_400 + n;
    json!({
        "origin": if n % 2 == 0 { "hls" } else { "icecast" },
        "ip": format!("10.0.{}.{}", n / 250, n % 250),
        "method": "GET",
        "path": if n % 3 == 0 { "/live.m3u8" } else { "/320.mp3" },
        "status": 200,
        "bytes_sent": 1000 + n,
        "user_agent": "VLC/3.0.18 LibVLC/3.0.18",
        "referer": "",
        "time_start": start,
        "time_end": start + 60,
    })
}

fn stored(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    airlog::db::schema::stats_stream_event::table
        .count()
        .get_result(&mut app.db.conn())
        .unwrap()
}

/// The ids of a page's rows, in order.
fn ids_of(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// Follows `next` from `url` and returns the ids seen, page by page.
async fn walk(app: &TestApp, token: &str, url: String) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut next = Some(url);
    while let Some(url) = next {
        let (status, body) = app.get_json(&url, token).await;
        assert_eq!(status, 200, "{body}");
        pages.push(ids_of(&body));
        next = body["next"].as_str().map(str::to_string);
        assert!(pages.len() < 1000, "walk does not end");
    }
    pages
}

#[tokio::test]
async fn every_accepted_time_format_is_stored_as_the_same_instant() {
    let app = TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest, Scope::Read]);
    let forms = [
        json!("2024-11-05T11:15:32Z"),
        json!("2024-11-05 11:15:32+00:00"),
        json!("2024-11-05 12:15:32.000000+01:00"),
        json!("05/Nov/2024:11:15:32 +0000"),
        json!(1730805332),
        json!("1730805332"),
    ];
    let batch: Vec<Value> = forms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut e = event(0);
            e["ip"] = json!(format!("192.0.2.{i}"));
            e["time_start"] = t.clone();
            e["time_end"] = json!("2024-11-05T11:16:32Z");
            e
        })
        .collect();
    let (status, body) = app.post_json(INGEST, &token, &json!(batch)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"created": 6, "duplicates": 0}));
    let (_, page) = app.get_json(LIST, &token).await;
    for row in page["results"].as_array().unwrap() {
        assert_eq!(row["timeStart"], "2024-11-05T11:15:32Z");
        assert_eq!(row["secondsConnected"], 60);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_batch_with_one_bad_item_is_rejected_whole_with_every_problem_named() {
    let app = TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest]);
    let mut naive = event(1);
    naive["time_start"] = json!("2024-11-05 11:15:32");
    let mut bad = event(2);
    bad["status"] = json!("two hundred");
    bad["ip"] = json!("300.1.1.1");
    bad.as_object_mut().unwrap().remove("path");
    let mut inconsistent = event(3);
    inconsistent["seconds_connected"] = json!(3600);
    let (status, body) = app
        .post_json(INGEST, &token, &json!([event(0), naive, bad, inconsistent]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "validation");
    let details: Vec<(i64, String)> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["index"].as_i64().unwrap(),
                d["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        details,
        vec![
            (1, "time_start".to_string()),
            (2, "ip".to_string()),
            (2, "path".to_string()),
            (2, "status".to_string()),
            (3, "seconds_connected".to_string()),
        ]
    );
    assert!(body["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no UTC offset"));
    assert_eq!(stored(&app), 0, "nothing of a rejected batch is stored");

    let (status, body) = app.post_json(INGEST, &token, &json!({"events": []})).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("JSON array"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn re_posting_a_batch_stores_nothing_twice() {
    let app = TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest]);
    let batch: Vec<Value> = (0..50).map(event).collect();
    assert_eq!(
        app.post_json(INGEST, &token, &json!(batch)).await,
        (201, json!({"created": 50, "duplicates": 0}))
    );
    assert_eq!(
        app.post_json(INGEST, &token, &json!(batch)).await,
        (201, json!({"created": 0, "duplicates": 50}))
    );
    // Half old, half new, plus a duplicate inside the batch itself.
    let mut mixed: Vec<Value> = (25..75).map(event).collect();
    mixed.push(event(74));
    assert_eq!(
        app.post_json(INGEST, &token, &json!(mixed)).await,
        (201, json!({"created": 25, "duplicates": 26}))
    );
    assert_eq!(stored(&app), 75);
    // A new batch holding one event twice: nothing of it was stored before.
    let mut twice: Vec<Value> = (100..110).map(event).collect();
    twice.push(event(105));
    assert_eq!(
        app.post_json(INGEST, &token, &json!(twice)).await,
        (201, json!({"created": 10, "duplicates": 1}))
    );
    assert_eq!(stored(&app), 85);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"airlog_ingest_events_total{kind="stream",outcome="created"} 85"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"airlog_ingest_events_total{kind="stream",outcome="duplicate"} 77"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_same_batch_posted_by_eight_clients_at_once_is_stored_once() {
    // Concurrent copies of one batch: each event is stored once, the rest count as duplicates.
    let app = TestApp::spawn_with(|s| s.server.workers = 4).await;
    let token = app.token(&[Scope::Ingest]);
    let batch = json!((0..200).map(event).collect::<Vec<Value>>());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let req = app.request(Method::POST, INGEST, Some(&token)).json(&batch);
            tokio::spawn(json_of(req))
        })
        .collect();
    let (mut created, mut duplicates) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 201, "{body}");
        created += body["created"].as_i64().unwrap();
        duplicates += body["duplicates"].as_i64().unwrap();
    }
    assert_eq!((created, duplicates), (200, 1400));
    assert_eq!(stored(&app), 200);
    app.stop().await;
}

#[tokio::test]
async fn oversized_batches_get_413_naming_the_cap() {
    let app = TestApp::spawn_with(|s| s.server.max_body_bytes = 64 * 1024).await;
    let token = app.token(&[Scope::Ingest]);
    let small: Vec<Value> = (0..10_001).map(|_| json!(0)).collect();
    let (status, body) = app.post_json(INGEST, &token, &json!(small)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("10000"),
        "{body}"
    );

    let big: Vec<Value> = (0..1000).map(event).collect();
    let (status, body) = app.post_json(INGEST, &token, &json!(big)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("65536 bytes"),
        "{body}"
    );
    assert_eq!(stored(&app), 0);
    app.stop().await;
}

#[tokio::test]
async fn ingest_and_read_need_their_own_scopes() {
    let app = TestApp::spawn().await;
    let ingest = app.token(&[Scope::Ingest]);
    let read = app.token(&[Scope::Read]);
    assert_eq!(
        app.post_json(INGEST, &read, &json!([event(0)])).await.0,
        403
    );
    assert_eq!(
        app.post_json(INGEST, &ingest, &json!([event(0)])).await.0,
        201
    );
    assert_eq!(app.get_json(LIST, &ingest).await.0, 403);
    assert_eq!(app.get_json(LIST, &read).await.0, 200);
    let anonymous = |path| app.request(Method::GET, path, None).send();
    assert_eq!(anonymous(LIST).await.unwrap().status(), 401);
    let export = anonymous("/api/v1/stats/stream-events/export.csv");
    assert_eq!(export.await.unwrap().status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn cursor_paging_walks_equal_start_times_without_gaps_or_duplicates() {
    let app = TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest, Scope::Read]);
    // 30 events on 6 distinct start times: a page boundary falls inside groups.
    let batch: Vec<Value> = (0..30)
        .map(|i| {
            let mut e = event(i);
            let start = 1_730_804_400 + (i % 6) * 10;
            e["time_start"] = json!(start);
            e["time_end"] = json!(start + 60);
            e
        })
        .collect();
    assert_eq!(app.post_json(INGEST, &token, &json!(batch)).await.0, 201);

    let pages = walk(&app, &token, app.url(&format!("{LIST}?limit=4"))).await;
    assert_eq!(pages.len(), 8);
    let ids: Vec<i64> = pages.concat();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "no duplicates, no gaps");

    // The order is time_start, then id.
    let (_, all) = app.get_json(&format!("{LIST}?limit=100"), &token).await;
    let ordered: Vec<i64> = ids_of(&all);
    assert_eq!(ids, ordered);
    assert_eq!(all["count"], 30);
    assert!(all["next"].is_null() && all["previous"].is_null());

    // Walking back with `previous` from the last page gives the same pages.
    let mut url = app.url(&format!("{LIST}?limit=4"));
    let last = loop {
        let (_, body) = app.get_json(&url, &token).await;
        assert_eq!(body["count"], 30, "count is carried by the cursor");
        match body["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break body,
        }
    };
    let mut back = vec![ids_of(&last)];
    let mut prev = last["previous"].as_str().map(str::to_string);
    while let Some(p) = prev {
        let (_, body) = app.get_json(&p, &token).await;
        back.push(ids_of(&body));
        prev = body["previous"].as_str().map(str::to_string);
    }
    back.reverse();
    assert_eq!(back, pages);

    // Old clients page by offset.
    let (_, body) = app
        .get_json(&format!("{LIST}?limit=10&offset=20"), &token)
        .await;
    let ids_offset: Vec<i64> = ids_of(&body);
    assert_eq!(ids_offset, ordered[20..30]);
    assert!(body["next"].is_null());
    assert!(body["previous"].as_str().unwrap().contains("offset=10"));

    let (status, body) = app.get_json(&format!("{LIST}?cursor=bogus"), &token).await;
    assert_eq!(status, 400);
    assert_eq!(body["details"][0]["field"], "cursor");
    app.stop().await;
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let app = TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest, Scope::Read]);
    let mut batch: Vec<Value> = (0..12).map(event).collect();
    batch[5]["status"] = json!(206);
    batch[7]["seconds_connected"] = json!(60);
    batch[7]["time_end"] = json!(1_730_804_400 + 7 + 600);
    batch[7]["seconds_connected"] = json!(600);
    assert_eq!(app.post_json(INGEST, &token, &json!(batch)).await.0, 201);
    let count = |q: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            let (status, body) = app.get_json(&format!("{LIST}?{q}"), token).await;
            assert_eq!(status, 200, "{q}: {body}");
            assert_eq!(
                body["count"].as_i64().unwrap() as usize,
                body["results"].as_array().unwrap().len()
            );
            body["count"].as_i64().unwrap()
        }
    };
    assert_eq!(count("origin=hls").await, 6);
    assert_eq!(count("origin=icecast").await, 6);
    assert_eq!(count("path=/live.m3u8").await, 4);
    assert_eq!(count("status=206").await, 1);
    assert_eq!(count("min_seconds=61").await, 1);
    assert_eq!(count("min_bytes=1010").await, 2);
    assert_eq!(
        count("time_from=2024-11-05T11:00:05Z&time_until=2024-11-05T11:00:08Z").await,
        3
    );
    assert_eq!(
        count("time_from=2024-11-05T11:00:05Z&origin=hls&min_bytes=1008").await,
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn exports_carry_every_matching_event() {
    let app = TestApp::spawn().await;
    let token = app.token(&[Scope::Ingest, Scope::Read]);
    let mut batch: Vec<Value> = (0..12_000).map(event).collect();
    batch[0]["user_agent"] = json!("Mozilla/5.0 (X11; \"quoted\", comma)");
    batch[0]["referer"] = json!("https://radio.example/");
    // Ends just before and just after midnight UTC.
    batch[1]["time_start"] = json!("2024-11-05T23:59:00Z");
    batch[1]["time_end"] = json!("2024-11-05T23:59:59Z");
    batch[2]["time_start"] = json!("2024-11-05T23:59:30Z");
    batch[2]["time_end"] = json!("2024-11-06T00:00:00Z");
    for chunk in batch.chunks(5000) {
        assert_eq!(app.post_json(INGEST, &token, &json!(chunk)).await.0, 201);
    }

    let (status, csv) = app
        .get_text("/api/v1/stats/stream-events/export.csv", &token)
        .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.len(),
        12_001,
        "header and every row, across export chunks"
    );
    assert!(lines[0].starts_with("id,uuid,origin,ip,method,path,status,bytes_sent"));
    let first = lines.iter().find(|l| l.contains("Mozilla")).unwrap();
    assert!(
        first.contains(r#","Mozilla/5.0 (X11; ""quoted"", comma)","#),
        "{first}"
    );
    assert!(
        first.contains(",GET,/live.m3u8,200,1000,https://radio.example/,"),
        "{first}"
    );

    let (status, nd) = app
        .get_text(
            "/api/v1/stats/stream-events/export.ndjson?origin=hls&path=/live.m3u8",
            &token,
        )
        .await;
    assert_eq!(status, 200);
    let rows: Vec<Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (_, listed) = app
        .get_json(
            &format!("{LIST}?origin=hls&path=/live.m3u8&limit=20000"),
            &token,
        )
        .await;
    assert_eq!(rows.len(), 2000);
    assert_eq!(
        &rows,
        listed["results"].as_array().unwrap(),
        "the export has the list's rows and fields"
    );

    let (status, log) = app
        .get_text(
            "/api/v1/stats/stream-events/export/icecast/2024-11-05.log",
            &token,
        )
        .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        11_999,
        "the event ending at midnight belongs to the next day"
    );
    assert_eq!(
        lines[0],
        r#"10.0.0.0 - - [05/Nov/2024:11:01:00 +0000] "GET /live.m3u8 HTTP/1.1" 200 1000 "https://radio.example/" "Mozilla/5.0 (X11; \"quoted\", comma)" 60"#
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("[05/Nov/2024:23:59:59 +0000]"),
        "ordered by end time"
    );
    let (_, next_day) = app
        .get_text(
            "/api/v1/stats/stream-events/export/icecast/2024-11-06.log",
            &token,
        )
        .await;
    assert_eq!(next_day.lines().count(), 1);
    let (status, _) = app
        .get_text(
            "/api/v1/stats/stream-events/export/icecast/2024-13-45.log",
            &token,
        )
        .await;
    assert_eq!(status, 400);
    app.stop().await;
}

/// Every stored column of a stream event but its id and uuid, as the database holds it.
fn stored_rows(app: &TestApp) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    diesel::sql_query(
        "SELECT concat_ws('|', origin, host(ip), masklen(ip), method, path, status, bytes_sent,
                referer, user_agent, seconds_connected, time_start, time_end, device_key) AS row
         FROM stats_stream_event ORDER BY time_start, path",
    )
    .load::<Row>(&mut app.db.conn())
    .unwrap()
    .into_iter()
    .map(|r| r.row)
    .collect()
}

#[tokio::test]
async fn a_fresh_batch_and_a_retried_one_store_the_same_values() {
    // A fresh batch is bulk-loaded; one that overlaps what is stored goes the row-by-row way.
    // Both must store exactly the same thing.
    let varied = |n: i64| {
        let mut e = event(n);
        e["ip"] = json!(if n % 2 == 0 {
            "2001:db8::7:1".to_string()
        } else {
            format!("192.0.2.{n}")
        });
        e["path"] = json!(format!("/émission/ü{n}.mp3"));
        e["referer"] = json!("https://example.org/écouter?x=1&y=\"2\"");
        e["user_agent"] = json!("Mozilla/5.0 \\ tab\there");
        e["time_start"] = json!(format!("2024-11-05 11:00:{:02}.123456+01:00", n));
        e["time_end"] = json!(format!("2024-11-05 11:01:{:02}.654321+01:00", n));
        e["seconds_connected"] = json!(61);
        e
    };
    let batch: Vec<Value> = (1..9).map(varied).collect();

    let fresh = TestApp::spawn().await;
    let token = fresh.token(&[Scope::Ingest]);
    assert_eq!(
        fresh.post_json(INGEST, &token, &json!(batch)).await,
        (201, json!({"created": 8, "duplicates": 0}))
    );

    let retried = TestApp::spawn().await;
    let token2 = retried.token(&[Scope::Ingest]);
    assert_eq!(
        retried.post_json(INGEST, &token2, &json!([batch[3]])).await,
        (201, json!({"created": 1, "duplicates": 0}))
    );
    assert_eq!(
        retried.post_json(INGEST, &token2, &json!(batch)).await,
        (201, json!({"created": 7, "duplicates": 1}))
    );

    let (a, b) = (stored_rows(&fresh), stored_rows(&retried));
    assert_eq!(a.len(), 8);
    assert_eq!(a, b);
    assert!(a.iter().any(|r| r.contains("2001:db8::7:1|128|")), "{a:?}");
    fresh.stop().await;
    retried.stop().await;
}
