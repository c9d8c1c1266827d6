//! Live capture from running mpv instances: each instance's events are written as they arrive
//! (nothing is lost on a crash or a suspend), in mpv-history-daemon's vocabulary, and its plays
//! are rebuilt from them with the same rules whenever a file ends and when the instance goes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Nullable, Text, Timestamptz};
use serde_json::{json, Map, Value};

use super::client::MpvClient;
use super::history::{content_hash, plays_with, Rules};
use super::protocol::Incoming;
use crate::db::{DbError, DbPool};
use crate::shutdown::Shutdown;

/// Properties observed on every instance, with their observer ids.
const OBSERVED: &[(u64, &str)] = &[
    (1, "pause"),
    (2, "path"),
    (3, "media-title"),
    (4, "metadata"),
    (5, "duration"),
    (6, "playlist-pos"),
    (7, "playlist-count"),
    (8, "idle-active"),
];

async fn record(
    pool: &DbPool,
    instance: &str,
    at: chrono::DateTime<chrono::Utc>,
    event: &str,
    data: Value,
) -> anyhow::Result<()> {
    let (instance, event, now) = (instance.to_string(), event.to_string(), at);
    crate::db::run(pool, move |c| {
        diesel::sql_query(
            "INSERT INTO mpv_event (instance, time, event, data) VALUES ($1, $2, $3, $4)",
        )
        .bind::<Text, _>(&instance)
        .bind::<Timestamptz, _>(now)
        .bind::<Text, _>(&event)
        .bind::<Nullable<Jsonb>, _>(Some(data))
        .execute(c)
        .map_err(DbError::from)
    })
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Timestamptz)]
    time: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    data: Option<Value>,
}

/// Rebuilds an instance's plays from its stored events and stores the new ones; the last
/// play gets `end_reason` when given.
pub async fn rebuild(
    pool: &DbPool,
    instance: &str,
    end_reason: Option<&str>,
    rules: Rules,
) -> anyhow::Result<usize> {
    let (instance, end_reason) = (instance.to_string(), end_reason.map(str::to_string));
    crate::db::run(pool, move |c| -> Result<usize, anyhow::Error> {
        let rows: Vec<Stored> = diesel::sql_query(
            "SELECT time, event, data FROM mpv_event WHERE instance = $1 ORDER BY time, id",
        )
        .bind::<Text, _>(&instance)
        .load(c)
        .map_err(DbError::from)?;
        let mut events = Map::new();
        for r in rows {
            let t = r.time.timestamp_micros() as f64 / 1e6;
            events.insert(
                format!("{t:.6}"),
                json!({ r.event: r.data.unwrap_or(Value::Null) }),
            );
        }
        let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
        let found = plays_with(&events, &instance, &home, false);
        let last = found.len().saturating_sub(1);
        let mut new = 0;
        for (i, p) in found.iter().enumerate() {
            let hash = if p.is_stream {
                None
            } else {
                content_hash(Path::new(&p.path))
            };
            let item = crate::db::mpv::item_for(
                c,
                &p.path,
                p.is_stream,
                p.media_title.as_deref().unwrap_or(""),
                hash.as_deref(),
            )?;
            let key = format!(
                "live:{instance}:{}:{}",
                (p.start_time * 1e6).round() as i64,
                p.path
            );
            let reason = if i == last {
                end_reason.as_deref()
            } else {
                Some("eof")
            };
            new += usize::from(crate::db::mpv::insert_play(
                c, item, "live", &key, &instance, p, reason, &rules,
            )?);
        }
        Ok(new)
    })
    .await
}

/// How plays are judged and where they are logged.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    pub rules: Rules,
    /// The station whose as-run log gets an ON_AIR entry for each file played.
    pub station: Option<String>,
}

/// Logs a file's start in the station's as-run log (deduplicated like every entry).
async fn log_on_air(
    pool: &DbPool,
    station: &str,
    instance: &str,
    at: chrono::DateTime<chrono::Utc>,
    path: String,
) -> anyhow::Result<()> {
    let (station, source) = (station.to_string(), format!("mpv:{instance}"));
    crate::db::run(pool, move |c| -> Result<(), anyhow::Error> {
        let Some(s) = crate::db::playout::station(c, &station).map_err(DbError::from)? else {
            tracing::warn!(
                station = station.as_str(),
                "mpv.station names no station; nothing logged on air"
            );
            return Ok(());
        };
        let sound = crate::db::playout::sound_by_path(c, &path).map_err(DbError::from)?;
        crate::db::playout::insert_log(
            c,
            &crate::db::playout::NewLog {
                station_id: s.id,
                r#type: "on_air",
                date: at,
                source: &source,
                comment: &path,
                path: Some(&path),
                sound_id: sound.map(|s| s.id),
                tags: json!({}),
                date_from: Some("mpv"),
                ..Default::default()
            },
        )
        .map_err(DbError::from)?;
        Ok(())
    })
    .await
}

/// Captures one instance until its socket closes (or shutdown).
pub async fn capture(
    pool: DbPool,
    socket: PathBuf,
    opts: CaptureOptions,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let rules = opts.rules;
    let mut working_dir = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let instance = socket
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (client, mut events) = MpvClient::connect(&socket, Duration::from_secs(2)).await?;
    let started = chrono::Utc::now();
    record(
        &pool,
        &instance,
        started,
        "socket-added",
        json!(started.timestamp_micros() as f64 / 1e6),
    )
    .await?;
    if let Ok(Some(dir)) = client.get("working-directory").await {
        if let Some(d) = dir.as_str() {
            working_dir = d.to_string();
        }
        record(&pool, &instance, started, "working-directory", dir).await?;
    }
    for (id, name) in OBSERVED {
        client.observe(*id, name).await?;
    }
    let mut reason: Option<String> = None;
    loop {
        let next = tokio::select! {
            _ = shutdown.requested() => return Ok(()),
            e = events.recv() => e,
        };
        let Some((at, incoming)) = next else { break };
        match incoming {
            Incoming::PropertyChange { name, data, .. } => match (name.as_str(), data) {
                ("pause", Some(Value::Bool(p))) => {
                    let pos = client.get("percent-pos").await.ok().flatten();
                    record(
                        &pool,
                        &instance,
                        at,
                        if p { "paused" } else { "resumed" },
                        json!({"percent-pos": pos}),
                    )
                    .await?;
                }
                (
                    "path" | "media-title" | "metadata" | "duration" | "playlist-pos"
                    | "playlist-count" | "idle-active",
                    Some(v),
                ) if !v.is_null() => {
                    if let (Some(station), "path", Some(p)) =
                        (&opts.station, name.as_str(), v.as_str())
                    {
                        let full = if p.starts_with('/') || p.contains("://") {
                            p.to_string()
                        } else {
                            Path::new(&working_dir).join(p).display().to_string()
                        };
                        log_on_air(&pool, station, &instance, at, full).await?;
                    }
                    record(&pool, &instance, at, &name, v).await?;
                }
                _ => {}
            },
            Incoming::Event { name, fields } => match name.as_str() {
                "seek" => {
                    let pos = client.get("percent-pos").await.ok().flatten();
                    record(&pool, &instance, at, "seek", json!({"percent-pos": pos})).await?;
                }
                "end-file" => {
                    let r = fields
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if r == "eof" || r == "stop" || r == "error" {
                        record(&pool, &instance, at, "eof", Value::Null).await?;
                        rebuild(&pool, &instance, Some(&r), rules).await?;
                    }
                    reason = Some(r);
                }
                _ => {}
            },
            Incoming::Reply { .. } => {}
        }
    }
    // The socket closed: a quit if mpv said so, else it died.
    let end = match reason.as_deref() {
        Some("quit") => "quit",
        _ => "crash",
    };
    let gone = chrono::Utc::now();
    record(
        &pool,
        &instance,
        gone,
        "mpv-quit",
        json!(gone.timestamp_micros() as f64 / 1e6),
    )
    .await?;
    rebuild(&pool, &instance, Some(end), rules).await?;
    Ok(())
}

/// Watches socket directories: at start, every `rescan`, on SIGUSR1 and when a directory
/// changes (inotify), each new socket gets its own capture task, so a stuck or dying instance
/// never blocks the others. A capture that fails (a frozen mpv, say) is tried again at the
/// next scan; a socket that refuses connections is dead (mpv leaves it behind) and is removed
/// when `remove_dead` is set.
pub async fn watch(
    pool: DbPool,
    dirs: Vec<PathBuf>,
    rescan: Duration,
    remove_dead: bool,
    opts: CaptureOptions,
    mut shutdown: Shutdown,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let (poke_tx, mut poke) = tokio::sync::mpsc::unbounded_channel::<()>();
    // inotify: any change in a watched directory triggers a scan.
    let _watcher = {
        use notify::Watcher;
        let tx = poke_tx.clone();
        let mut w = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .ok();
        if let Some(w) = w.as_mut() {
            for dir in &dirs {
                if let Err(e) = w.watch(dir, notify::RecursiveMode::NonRecursive) {
                    tracing::debug!(dir = %dir.display(), error = %e, "not watching with inotify; rescans only");
                }
            }
        }
        w
    };
    let mut usr1 =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
    loop {
        for dir in &dirs {
            // A configured path is a directory of sockets, or a socket itself.
            let candidates: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
                Err(_) if dir.exists() => vec![dir.clone()],
                Err(_) => continue,
            };
            for socket in candidates {
                if !seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(socket.clone())
                {
                    continue;
                }
                let (pool, stop, seen, opts) =
                    (pool.clone(), shutdown.clone(), seen.clone(), opts.clone());
                tokio::spawn(async move {
                    let Err(e) = capture(pool, socket.clone(), opts, stop).await else {
                        return;
                    };
                    let refused = e.chain().any(|c| {
                        c.downcast_ref::<super::client::MpvError>().is_some_and(|m| {
                            matches!(m, super::client::MpvError::Connect(_, io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
                        })
                    });
                    if refused {
                        if remove_dead && std::fs::remove_file(&socket).is_ok() {
                            tracing::info!(socket = %socket.display(), "dead mpv socket removed");
                        }
                    } else {
                        tracing::info!(socket = %socket.display(), error = format!("{e:#}"), "mpv instance not captured; trying again at the next scan");
                        seen.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&socket);
                    }
                });
            }
        }
        let usr1_recv = async {
            match usr1.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = tokio::time::sleep(rescan) => {}
            _ = poke.recv() => {}
            _ = usr1_recv => tracing::info!("SIGUSR1: rescanning mpv sockets"),
        }
    }
}
