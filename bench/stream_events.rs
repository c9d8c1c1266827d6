//! Stream events: HTTP ingest vs raw COPY, keyset walk cost, export memory.
//!
//! `cargo bench --bench stream_events -- --events 1000000` (see README, "Benchmarks").
//! Every figure is a ratio against a baseline measured in the same run on the same database.

#[path = "common.rs"]
mod common;

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use airlog::db::schema::stats_stream_event as se;
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;

const BATCH: usize = 1000;
const CLIENTS: usize = 4;
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "VLC/3.0.18 LibVLC/3.0.18",
    "Linux UPnP/1.0 Sonos/57.21-51190 (ZPS12)",
    "AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X; en_us)",
    "Lavf/58.76.100",
];

struct Ev {
    origin: &'static str,
    ip: String,
    path: &'static str,
    status: i32,
    bytes: i64,
    ua: &'static str,
    start: DateTime<Utc>,
    seconds: i64,
}

/// Deterministic, realistic-looking events spread over 30 days.
fn generate(n: usize) -> Vec<Ev> {
    let base = Utc.with_ymd_and_hms(2024, 11, 1, 0, 0, 0).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let seconds = (r % 7200) as i64 + 5;
            Ev {
                origin: if r % 3 == 0 { "icecast" } else { "hls" },
                ip: format!(
                    "10.{}.{}.{}",
                    (r >> 8) % 256,
                    (r >> 16) % 256,
                    (r >> 24) % 254 + 1
                ),
                path: ["/live.m3u8", "/320.mp3", "/128.aac"][(r >> 32) as usize % 3],
                status: 200,
                bytes: seconds * 16_000 + (r >> 40) as i64 % 1000,
                ua: USER_AGENTS[(r >> 36) as usize % USER_AGENTS.len()],
                start: base + chrono::Duration::milliseconds((i as i64) * 2592 + (r % 1000) as i64),
                seconds,
            }
        })
        .collect()
}

fn json_batch(events: &[Ev]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "origin": e.origin, "ip": e.ip, "method": "GET", "path": e.path, "status": e.status,
                "bytes_sent": e.bytes, "user_agent": e.ua, "referer": "",
                // Python's str(datetime), as the shippers send it.
                "time_start": e.start.format("%Y-%m-%d %H:%M:%S%.6f%:z").to_string(),
                "time_end": (e.start + chrono::Duration::seconds(e.seconds)).format("%Y-%m-%d %H:%M:%S%.6f%:z").to_string(),
                "seconds_connected": e.seconds,
            })
        })
        .collect();
    serde_json::to_vec(&items).unwrap()
}

fn copy_in(url: &str, events: &[Ev]) -> Duration {
    let mut conn = PgConnection::establish(url).unwrap();
    let started = Instant::now();
    diesel::copy_from(se::table)
        .from_raw_data(
            (
                se::origin,
                se::ip,
                se::method,
                se::path,
                se::status,
                se::bytes_sent,
                se::referer,
                se::user_agent,
                se::seconds_connected,
                se::time_start,
                se::time_end,
                se::device_key,
            ),
            |w: &mut dyn Write| -> Result<(), diesel::result::Error> {
                let io = |e: std::io::Error| diesel::result::Error::SerializationError(Box::new(e));
                let mut buf = Vec::with_capacity(1 << 20);
                for e in events {
                    let ip: std::net::IpAddr = e.ip.parse().unwrap();
                    let key = airlog::domain::stream_event::device_key(&ip, e.ua);
                    writeln!(
                        buf,
                        "{}\t{}\tGET\t{}\t{}\t{}\t\t{}\t{}\t{}\t{}\t{}",
                        e.origin,
                        e.ip,
                        e.path,
                        e.status,
                        e.bytes,
                        e.ua,
                        e.seconds,
                        e.start.to_rfc3339(),
                        (e.start + chrono::Duration::seconds(e.seconds)).to_rfc3339(),
                        key
                    )
                    .map_err(io)?;
                    if buf.len() > (1 << 20) {
                        w.write_all(&buf).map_err(io)?;
                        buf.clear();
                    }
                }
                w.write_all(&buf).map_err(io)
            },
        )
        .execute(&mut conn)
        .unwrap();
    started.elapsed()
}

fn copy_out(url: &str) -> (Duration, usize) {
    let mut conn = PgConnection::establish(url).unwrap();
    let started = Instant::now();
    let mut reader = diesel::copy_to(se::table).load_raw(&mut conn).unwrap();
    let mut bytes = 0;
    loop {
        let buf = reader.fill_buf().unwrap();
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        bytes += n;
        reader.consume(n);
    }
    drop(reader);
    (started.elapsed(), bytes)
}

fn truncate(url: &str) {
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::sql_query("TRUNCATE stats_stream_event")
        .execute(&mut conn)
        .unwrap();
    vacuum_analyze(url);
}

fn vacuum_analyze(url: &str) {
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::sql_query("VACUUM ANALYZE stats_stream_event")
        .execute(&mut conn)
        .unwrap();
}

/// One round of the ingest comparison; `cpu` is (COPY, airlog, PostgreSQL during HTTP) seconds.
#[derive(Clone, Copy)]
struct Round {
    copy_time: Duration,
    http_time: Duration,
    cpu: Option<(f64, f64, f64)>,
}

impl Round {
    fn key(&self) -> f64 {
        match self.cpu {
            Some((copy, airlog, pg)) => (airlog + pg) / copy,
            None => self.http_time.as_secs_f64() / self.copy_time.as_secs_f64(),
        }
    }
}

/// Posts every batch with CLIENTS concurrent clients; returns how many events were created.
async fn post_all(client: &reqwest::Client, base: &str, token: &str, batches: Vec<Vec<u8>>) -> u64 {
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (queue, client, token, base) = (
            queue.clone(),
            client.clone(),
            token.to_string(),
            base.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut created = 0u64;
            loop {
                let Some(body) = queue.lock().unwrap().next() else {
                    return created;
                };
                let res = client
                    .post(format!("{base}/api/v1/stats/ingest/stream-events/"))
                    .header("Authorization", format!("Token {token}"))
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let v: serde_json::Value = res.json().await.unwrap();
                assert_eq!(status, 201, "{v}");
                created += v["created"].as_u64().unwrap();
            }
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap();
    }
    created
}

fn autovacuum(url: &str, on: bool) {
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::sql_query(format!(
        "ALTER TABLE stats_stream_event SET (autovacuum_enabled = {on})"
    ))
    .execute(&mut conn)
    .unwrap();
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let n: usize = common::arg("--events", 1_000_000);
    let rounds: usize = common::arg("--rounds", 3).max(1);
    println!(
        "airlog stream-event bench: {n} events, batches of {BATCH}, {CLIENTS} clients, {rounds} rounds"
    );
    let db = common::BenchDb::open();
    let events = generate(n);
    let batches: Vec<Vec<u8>> = events.chunks(BATCH).map(json_batch).collect();

    let server = common::Server::start(&db.url);
    let token = common::admin_token(&db.url);
    let client = reqwest::Client::new();
    let rss_idle = server.rss_kib();

    // Each round loads the same rows twice into the same (indexed, emptied) table: a raw COPY
    // FROM STDIN, then the HTTP API. CPU time is counted for PostgreSQL (every process of the
    // cluster), and for HTTP ingest also for airlog: on a shared machine CPU seconds per row
    // compare work, where wall time would not. Rounds alternate the two, so a neighbour's burst
    // cannot favour one side, and the median round is reported.
    // Autovacuum is off for the measured table during the loads: left on, it vacuums the rows
    // of the HTTP load inside that load's CPU window (the load is many commits), but those of
    // the COPY (one commit) only after its window closed; the comparison would charge one side
    // for maintenance both cause. The walk and export phases are not affected (their rows are
    // vacuumed and analysed explicitly below).
    let postmaster = db.postmaster();
    let cluster_cpu = || postmaster.map(common::cluster_cpu_s);
    let mut rounds_done: Vec<Round> = Vec::new();
    let mut rss_ingest = 0;
    for round in 0..rounds {
        autovacuum(&db.url, false);
        let cpu_before = cluster_cpu();
        let copy_time = copy_in(&db.url, &events);
        let copy_cpu = cpu_before.zip(cluster_cpu()).map(|(a, b)| b - a);
        truncate(&db.url);

        // HTTP ingest, CLIENTS concurrent posters.
        let server_cpu_before = common::process_cpu_s(server.child.id());
        let cpu_before = cluster_cpu();
        let peak = common::PeakRss::watch(server.child.id());
        let started = Instant::now();
        let created = post_all(&client, &server.base, &token, batches.clone()).await;
        let http_time = started.elapsed();
        let airlog_cpu = common::process_cpu_s(server.child.id()) - server_cpu_before;
        let pg_cpu = cpu_before.zip(cluster_cpu()).map(|(a, b)| b - a);
        rss_ingest = rss_ingest.max(peak.stop());
        assert_eq!(created as usize, n, "every event stored once");
        let r = Round {
            copy_time,
            http_time,
            cpu: copy_cpu
                .zip(pg_cpu)
                .map(|(copy, pg)| (copy, airlog_cpu, pg)),
        };
        println!(
            "  round {}: COPY {:.2} s, HTTP {:.2} s{}",
            round + 1,
            copy_time.as_secs_f64(),
            http_time.as_secs_f64(),
            r.cpu
                .map(|(copy, a, pg)| format!(", CPU ratio {:.2}", (a + pg) / copy))
                .unwrap_or_default()
        );
        rounds_done.push(r);
        if round + 1 < rounds {
            truncate(&db.url);
        }
    }
    autovacuum(&db.url, true);
    vacuum_analyze(&db.url);
    // The median round by CPU ratio (by wall-time ratio when CPU cannot be read).
    rounds_done.sort_by(|a, b| a.key().total_cmp(&b.key()));
    let Round {
        copy_time,
        http_time,
        cpu,
    } = rounds_done[rounds_done.len() / 2];
    let copy_rate = n as f64 / copy_time.as_secs_f64();
    let http_rate = n as f64 / http_time.as_secs_f64();

    // Walk everything with limit=20000 via `next`.
    let mut page_times = Vec::new();
    let mut url = Some(format!(
        "{}/api/v1/stats/stream-events/?limit=20000",
        server.base
    ));
    let mut seen = 0usize;
    let walk_started = Instant::now();
    while let Some(u) = url {
        let t = Instant::now();
        let body: serde_json::Value = client
            .get(&u)
            .header("Authorization", format!("Token {token}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page_times.push(t.elapsed());
        seen += body["results"].as_array().unwrap().len();
        url = body["next"].as_str().map(str::to_string);
    }
    let walk_time = walk_started.elapsed();
    assert_eq!(seen, n, "the walk sees every event once");
    let (copy_out_time, copy_out_bytes) = copy_out(&db.url);

    // Full CSV export, streamed and discarded.
    let rss_before_export = server.rss_kib();
    let peak = common::PeakRss::watch(server.child.id());
    let t = Instant::now();
    let mut res = client
        .get(format!(
            "{}/api/v1/stats/stream-events/export.csv",
            server.base
        ))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    let mut export_bytes = 0usize;
    while let Some(chunk) = res.chunk().await.unwrap() {
        export_bytes += chunk.len();
    }
    let export_time = t.elapsed();
    let rss_export = peak.stop();

    let first = page_times.first().copied().unwrap_or_default();
    let last = page_times.last().copied().unwrap_or_default();
    let mut sorted = page_times.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    println!();
    println!("ingest");
    println!(
        "  raw COPY FROM STDIN       {:>12.0} rows/s  ({:.2} s)",
        copy_rate,
        copy_time.as_secs_f64()
    );
    println!(
        "  HTTP ingest ({CLIENTS} clients)    {:>12.0} rows/s  ({:.2} s)",
        http_rate,
        http_time.as_secs_f64()
    );
    println!(
        "  ratio HTTP / COPY         {:>12.2}   (target >= 0.5)",
        http_rate / copy_rate
    );
    match cpu {
        Some((copy, airlog_cpu, pg)) => {
            let http = airlog_cpu + pg;
            println!(
                "  CPU per row, COPY         {:>12.1} us  (PostgreSQL)",
                copy / n as f64 * 1e6
            );
            println!(
                "  CPU per row, HTTP ingest  {:>12.1} us  (airlog {:.1} + PostgreSQL {:.1})",
                http / n as f64 * 1e6,
                airlog_cpu / n as f64 * 1e6,
                pg / n as f64 * 1e6
            );
            println!(
                "  ratio CPU HTTP / COPY     {:>12.2}   (target <= 1.3; median of {rounds} rounds)",
                http / copy
            );
        }
        _ => println!("  CPU per row: not measured (DATABASE_URL given: the cluster is not ours)"),
    }
    println!("paging ({} pages of 20000)", page_times.len());
    println!(
        "  first page                {:>12.1} ms (includes the walk's one count)",
        first.as_secs_f64() * 1e3
    );
    println!(
        "  median page               {:>12.1} ms",
        median.as_secs_f64() * 1e3
    );
    println!(
        "  last page                 {:>12.1} ms",
        last.as_secs_f64() * 1e3
    );
    println!(
        "  ratio last / first        {:>12.2}   (target <= 1.5)",
        last.as_secs_f64() / first.as_secs_f64()
    );
    println!(
        "  whole walk                {:>12.2} s",
        walk_time.as_secs_f64()
    );
    println!(
        "  COPY TO STDOUT            {:>12.2} s  ({} MiB)",
        copy_out_time.as_secs_f64(),
        copy_out_bytes >> 20
    );
    println!(
        "  ratio walk / COPY TO      {:>12.2}",
        walk_time.as_secs_f64() / copy_out_time.as_secs_f64()
    );
    println!("memory (server RSS)");
    println!("  idle                      {:>12.1} MiB", mib(rss_idle));
    println!("  peak during ingest        {:>12.1} MiB", mib(rss_ingest));
    println!(
        "  before export             {:>12.1} MiB",
        mib(rss_before_export)
    );
    println!(
        "  peak during CSV export    {:>12.1} MiB  ({} MiB exported in {:.2} s)",
        mib(rss_export),
        export_bytes >> 20,
        export_time.as_secs_f64()
    );
    println!(
        "  export adds               {:>12.1} MiB  (target < 20)",
        mib(rss_export.saturating_sub(rss_before_export))
    );
    drop(server);
    drop(db);
}
