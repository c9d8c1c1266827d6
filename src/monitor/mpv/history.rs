//! Plays rebuilt from mpv-history-daemon's files (events keyed by their time), following the
//! rules of its parser, so its JSON files (plain and merged) import with the same results
//! (`airlog mpv parse` prints them in its shape). Only files go this way: the live capture
//! rebuilds plays from mpv's own file boundaries (`super::live`), which the daemon's rules
//! get wrong when mpv reports the next position before the end of the file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::domain::play::{Action, Play, Rules};

/// How much a play knows, to choose between two records of one path.
fn score(play: &Play) -> f64 {
    let mut s = 0;
    s += usize::from(play.media_title.is_some());
    s += usize::from(play.media_duration.is_some());
    s += usize::from(play.pause_duration > 1.0);
    s += play.metadata.len() / 4;
    s += play.actions.len() / 8;
    s as f64
}

/// The event streams of one mpv-history-daemon file: a plain file is one stream (named by the
/// file), a merged file (`{"mapping": {...}}`) holds several.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<(String, Map<String, Value>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Value::Object(obj) = value else {
        anyhow::bail!(
            "{} is not an mpv-history-daemon file (not an object)",
            path.display()
        )
    };
    match obj.get("mapping") {
        Some(Value::Object(mapping)) => Ok(mapping
            .iter()
            .filter_map(|(name, v)| v.as_object().map(|o| (name.clone(), o.clone())))
            .collect()),
        _ => Ok(vec![(path.display().to_string(), obj)]),
    }
}

/// What is known of the play being built.
#[derive(Default)]
struct Building {
    playlist_pos: Option<Value>,
    start_time: Option<f64>,
    is_stream: Option<bool>,
    path: Option<String>,
    metadata: Option<Map<String, Value>>,
    media_title: Option<String>,
    duration: Option<f64>,
}

impl Building {
    fn is_empty(&self) -> bool {
        self.playlist_pos.is_none()
            && self.start_time.is_none()
            && self.is_stream.is_none()
            && self.path.is_none()
            && self.metadata.is_none()
            && self.media_title.is_none()
            && self.duration.is_none()
    }

    fn complete(&self) -> bool {
        self.playlist_pos.is_some() && self.start_time.is_some() && self.path.is_some()
    }

    fn finish(
        &mut self,
        end: f64,
        pause: f64,
        actions: &BTreeMap<u64, (f64, String, Option<f64>)>,
    ) -> Option<Play> {
        let done = std::mem::take(self);
        let start = done.start_time?;
        let path = done.path?;
        done.playlist_pos.as_ref()?;
        Some(Play {
            path,
            is_stream: done.is_stream.unwrap_or(false),
            start_time: start,
            end_time: end,
            pause_duration: pause,
            media_duration: done.duration,
            media_title: done.media_title,
            actions: actions
                .values()
                .map(|(t, a, p)| Action {
                    since_started: t - start,
                    action: a.clone(),
                    percentage: *p,
                })
                .collect(),
            metadata: done.metadata.unwrap_or_default(),
        })
    }
}

fn is_urlish(s: &str) -> bool {
    ["http://", "https://", "ftp://", "ftps://"]
        .iter()
        .find_map(|p| {
            s.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &s[p.len()..])
        })
        .is_some_and(|rest| {
            rest.split(['/', '?'])
                .next()
                .is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace))
        })
}

/// The path mpv reports, as stored: `ytdl://` dropped, URLs kept as streams, relative paths
/// made absolute with mpv's working directory. Returns (path, is_stream).
pub fn media_path(reported: &str, working_dir: &str) -> (String, bool) {
    if let Some(rest) = reported.strip_prefix("ytdl://") {
        (rest.to_string(), true)
    } else if is_urlish(reported) {
        (reported.to_string(), true)
    } else if reported.starts_with('/') {
        (reported.to_string(), false)
    } else {
        (
            Path::new(working_dir).join(reported).display().to_string(),
            false,
        )
    }
}

/// Rebuilds the plays of one event stream. `name` is the stream's file name: mpv-sockets names
/// sockets by launch time in nanoseconds, which dates the first play. `home` resolves relative
/// paths when no working directory was recorded. Plays of one path are merged, the richer
/// record winning, in order of first appearance (the daemon's rule; a file played twice is one
/// play here, two in the live capture).
pub fn plays(events: &Map<String, Value>, name: &str, home: &str) -> Vec<Play> {
    let mut launched: Option<f64> = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<i128>().ok())
        .map(|ns| ns as f64 / 1e9);
    let mut ordered: Vec<(f64, &str, &Value)> = events
        .iter()
        .filter_map(|(k, v)| {
            let t = k.trim().parse::<f64>().ok().filter(|t| t.is_finite())?;
            let (event, data) = v.as_object()?.iter().next()?;
            Some((t, event.as_str(), data))
        })
        .collect();
    ordered.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut out: Vec<Play> = Vec::new();
    let mut emit = |p: Option<Play>| {
        if let Some(p) = p {
            match out.iter_mut().find(|q| q.path == p.path) {
                Some(q) if score(&p) > score(q) => *q = p,
                Some(_) => {}
                None => out.push(p),
            }
        }
    };
    let mut working_dir = home.to_string();
    let mut first_item = true;
    let mut latest = 0.0_f64;
    let mut playing = true;
    let mut pause = 0.0_f64;
    let mut paused_at: Option<f64> = None;
    let mut actions: BTreeMap<u64, (f64, String, Option<f64>)> = BTreeMap::new();
    let mut seen_pause_event = false;
    let mut media = Building::default();

    for (t, event, data) in ordered {
        latest = t;
        match event {
            "playlist" | "playlist-count" => {}
            "playlist-pos" => {
                if media.playlist_pos.as_ref() == Some(data) {
                    continue;
                }
                media.playlist_pos = Some(data.clone());
                media.start_time = if first_item { launched } else { Some(t) };
                first_item = false;
            }
            "socket-added" => {
                if launched.is_none() {
                    launched = data
                        .as_f64()
                        .or_else(|| data.as_str().and_then(|s| s.parse().ok()))
                        .map(f64::trunc);
                }
            }
            "working-directory" => {
                if let Some(d) = data.as_str() {
                    working_dir = d.to_string();
                }
            }
            "is-paused" => {
                seen_pause_event = true;
                if data == &Value::Bool(true) {
                    playing = false;
                    paused_at = launched;
                }
            }
            "path" => {
                let Some(p) = data.as_str() else { continue };
                let (path, is_stream) = media_path(p, &working_dir);
                media.path = Some(path);
                media.is_stream = Some(is_stream);
            }
            "metadata" => media.metadata = data.as_object().cloned().or(Some(Map::new())),
            "media-title" => media.media_title = data.as_str().map(str::to_string),
            "duration" => media.duration = data.as_f64(),
            "seek" | "paused" | "resumed" => {
                if let Some(pos) = data.get("percent-pos") {
                    let entry = (t, event.to_string(), pos.as_f64());
                    let key = t.to_bits();
                    if event != "resumed" {
                        actions.insert(key, entry);
                    } else if seen_pause_event {
                        // The "resumed" sent when a socket connects to a playing mpv is no action.
                        if !(playing && actions.is_empty()) {
                            actions.insert(key, entry);
                        }
                    } else {
                        // Files from before is-paused existed: a resume in the first 20 s while
                        // playing is that same connection artefact.
                        let early = launched.is_some_and(|l| t - l <= 20.0);
                        if !(early && playing && actions.is_empty()) {
                            actions.insert(key, entry);
                        }
                    }
                }
                if event == "paused" && playing {
                    playing = false;
                    paused_at = Some(t);
                } else if event == "resumed" && !playing {
                    playing = true;
                    if let Some(at) = paused_at.take() {
                        pause += t - at;
                    }
                }
            }
            "eof" => {
                if !playing {
                    if let Some(at) = paused_at {
                        pause += t - at;
                    }
                }
                emit(media.finish(t, pause, &actions));
                pause = 0.0;
                actions.clear();
            }
            "mpv-quit" | "final-write" => {
                if media.complete() {
                    if !playing {
                        if let Some(at) = paused_at {
                            pause += t - at;
                        }
                    }
                    emit(media.finish(t, pause, &actions));
                }
                return out;
            }
            other => tracing::debug!(event = other, "unexpected mpv event"),
        }
    }
    // No quit: a crash. Kept when it had been playing for over a minute.
    if !media.is_empty()
        && media.complete()
        && latest - media.start_time.unwrap_or(latest).trunc() > 60.0
    {
        if !playing {
            if let Some(at) = paused_at {
                pause += latest - at;
            }
        }
        emit(media.finish(latest, pause, &actions));
    }
    out
}

/// The plays of mpv-history-daemon files, in its JSON shape (times as whole Unix seconds);
/// `all` keeps plays the default filter would drop.
pub fn parse_files(
    files: &[std::path::PathBuf],
    all: bool,
    rules: &Rules,
) -> anyhow::Result<Value> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let mut rows = Vec::new();
    for file in files {
        for (name, events) in read_file(file)? {
            for p in plays(&events, &name, &home) {
                if all || p.listened(rules) {
                    let mut v = serde_json::to_value(&p)?;
                    v["start_time"] = Value::from(p.start_time.trunc() as i64);
                    v["end_time"] = Value::from(p.end_time.trunc() as i64);
                    rows.push(v);
                }
            }
        }
    }
    Ok(Value::Array(rows))
}

/// A fingerprint of a file's content (size, first MiB, last 64 KiB), so a renamed or retagged
/// file keeps its item; None when the file cannot be read (gone, or a stream).
pub fn content_hash(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    let mut head = vec![0u8; 1 << 20];
    let n = f.read(&mut head).ok()?;
    hasher.update(&head[..n]);
    if size > (1 << 20) {
        f.seek(SeekFrom::End(-(64 * 1024))).ok()?;
        let mut tail = vec![0u8; 64 * 1024];
        let n = f.read(&mut tail).ok()?;
        hasher.update(&tail[..n]);
    }
    Some(hex::encode(hasher.finalize()))
}

/// Stores the plays of mpv-history-daemon files; importing twice adds nothing. Returns
/// (plays found, plays new).
pub fn import_files(
    conn: &mut diesel::PgConnection,
    files: &[std::path::PathBuf],
    rules: &Rules,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(usize, usize)> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    progress.set_length(files.len() as u64);
    let (mut found, mut new) = (0, 0);
    for file in files {
        for (name, events) in read_file(file)? {
            let stream = Path::new(&name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(name.clone());
            // The daemon names its file after the socket: the same instance as a live capture
            // of that socket (whose plays then win; see `insert_play`).
            let instance = stream.strip_suffix(".json").unwrap_or(&stream);
            for p in plays(&events, &name, &home) {
                found += 1;
                let hash = if p.is_stream {
                    None
                } else {
                    content_hash(Path::new(&p.path))
                };
                let title = p.media_title.clone().unwrap_or_default();
                let key = format!(
                    "import:{stream}:{}:{}",
                    (p.start_time * 1e6).round() as i64,
                    p.path
                );
                let item =
                    crate::db::mpv::item_for(conn, &p.path, p.is_stream, &title, hash.as_deref())?;
                new += usize::from(crate::db::mpv::insert_play(
                    conn, item, "import", &key, instance, &p, None, rules,
                )?);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok((found, new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pauses_seeks_and_quit_make_plays() {
        let e = events(json!({
            "1614905901.2": {"working-directory": "/music"},
            "1614905901.4": {"is-paused": false},
            "1614905901.5": {"playlist-pos": 0},
            "1614905901.6": {"path": "a.mp3"},
            "1614905901.9": {"duration": 200.0},
            "1614905901.95": {"resumed": {"percent-pos": 0.0}},
            "1614905950.0": {"paused": {"percent-pos": 24.5}},
            "1614905970.0": {"resumed": {"percent-pos": 24.5}},
            "1614906100.0": {"eof": null},
            "1614906100.2": {"playlist-pos": 1},
            "1614906100.3": {"path": "https://radio.example/live.mp3"},
            "1614906400.0": {"mpv-quit": 1614906400.0}
        }));
        let p = plays(&e, "1614905900000000000.json", "/home");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].path, "/music/a.mp3");
        assert_eq!(
            p[0].start_time, 1614905900.0,
            "the first play starts at mpv's launch"
        );
        assert_eq!(p[0].pause_duration, 20.0);
        assert_eq!(
            p[0].actions.len(),
            2,
            "the connect-time resume is no action"
        );
        assert!(p[0].listened(&Rules::default()), "180 s of a 200 s file");
        assert!(p[0].scrobbled(&Rules::default()));
        assert!(p[1].is_stream);
        assert_eq!(
            (p[1].start_time, p[1].end_time),
            (1614906100.2, 1614906400.0)
        );
        assert!(
            p[1].listened(&Rules::default()),
            "a stream heard for 5 minutes"
        );
        assert!(!p[1].scrobbled(&Rules::default()), "no length, no scrobble");
    }

    #[test]
    fn a_crash_keeps_a_play_longer_than_a_minute_and_dev_paths_are_not_listening() {
        let e = events(json!({
            "100.0": {"socket-added": 100.5},
            "101.0": {"playlist-pos": 0},
            "101.1": {"path": "/dev/video0"},
            "200.0": {"seek": {"percent-pos": 5.0}}
        }));
        let p = plays(&e, "not-a-timestamp.json", "/home");
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].start_time, p[0].end_time), (100.0, 200.0));
        assert!(!p[0].listened(&Rules::default()));
    }
}
