//! Plays rebuilt from the events a live capture stored, by mpv's own file boundaries: a play
//! opens at `start-file` and closes at the `end-file` of the same `playlist_entry_id`, its path
//! is the playlist entry of that id. Property changes (`playlist-pos`, `path`, ...) only add
//! details: mpv reads their values when it sends them, so they may already describe the next
//! file (on `playlist-next` the new position often comes before the `end-file` of the skipped
//! file), and the order they come in decides nothing here.
//!
//! Events are taken in the order of their sequence number (their identity, per instance), never
//! by time. Pure and synchronous: the capture feeds events as it stores them, tests feed
//! recorded orders.
//!
//! The events, as the capture stores them:
//! - `connected` `{pid, working-directory, playing: {id, filename} | null, time-pos, pause}`: a
//!   connection to mpv began; what it was playing then.
//! - `start-file` / `end-file` `{playlist_entry_id, reason, file_error}` / `file-loaded`: mpv's.
//! - `playlist-entries` `{"<id>": "<filename>"}`: playlist entries not seen before.
//! - `path`, `media-title`, `metadata`, `duration`, `playlist-pos`, `playlist-count`,
//!   `idle-active`: observed properties.
//! - `paused`, `resumed`, `seek` `{percent-pos}`.
//! - `disconnected` `{reason: quit | closed}`: the socket closed after mpv's quit, or without
//!   one (a play still open then ends as a crash).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::history::media_path;
use crate::domain::play::{Action, Play};

/// One stored event of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's identity: its place in the instance's sequence.
    pub seq: i64,
    /// Unix seconds when it arrived.
    pub time: f64,
    pub name: String,
    pub data: Value,
}

/// A finished play and why it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePlay {
    /// The `seq` of the event that opened the play: a stable identity across rebuilds.
    pub key: i64,
    pub play: Play,
    /// `eof`, `stop`, `error`, `quit`, `crash` (the socket died), or `unknown` (airlog lost
    /// sight of the instance meanwhile).
    pub end_reason: String,
}

/// What an event changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A play began (reported once its path is known).
    Started {
        key: i64,
        time: f64,
        path: String,
        is_stream: bool,
    },
    /// A play ended.
    Ended(LivePlay),
}

/// The play in progress.
#[derive(Debug)]
struct Open {
    key: i64,
    entry: Option<i64>,
    /// Opened from a `connected` snapshot rather than a `start-file`.
    from_snapshot: bool,
    start: f64,
    path: Option<(String, bool)>,
    announced: bool,
    title: Option<String>,
    duration: Option<f64>,
    metadata: Option<Map<String, Value>>,
    pause: f64,
    paused_at: Option<f64>,
    actions: Vec<Action>,
}

/// A property value and the path mpv reported when it came: it belongs to a play of that path.
type Tagged<T> = Option<(String, T)>;

/// The state of one instance's rebuild.
#[derive(Debug)]
pub struct Rebuild {
    working_dir: String,
    pid: Option<i64>,
    entries: HashMap<i64, String>,
    open: Option<Open>,
    paused: bool,
    last_time: f64,
    seen_path: Option<String>,
    title: Tagged<Option<String>>,
    duration: Tagged<Option<f64>>,
    metadata: Tagged<Map<String, Value>>,
}

fn entry_id(v: &Value) -> Option<i64> {
    v.get("playlist_entry_id").and_then(Value::as_i64)
}

impl Rebuild {
    /// A rebuild that resolves relative paths against `home` until mpv's working directory is
    /// known.
    pub fn new(home: &str) -> Rebuild {
        Rebuild {
            working_dir: home.to_string(),
            pid: None,
            entries: HashMap::new(),
            open: None,
            paused: false,
            last_time: 0.0,
            seen_path: None,
            title: None,
            duration: None,
            metadata: None,
        }
    }

    /// The filename of playlist entry `id`, when known.
    pub fn entry(&self, id: i64) -> Option<&str> {
        self.entries.get(&id).map(String::as_str)
    }

    /// Takes one event (in sequence order) and says what it changed.
    pub fn feed(&mut self, e: &Event) -> Vec<Change> {
        let mut out = Vec::new();
        let t = e.time;
        match e.name.as_str() {
            "connected" => self.connected(e, &mut out),
            "start-file" => {
                let entry = entry_id(&e.data);
                if let Some(o) = self.open.as_mut() {
                    // The snapshot at connection time saw this file already starting: the
                    // start-file is the same start, and dates it better.
                    if o.from_snapshot && o.entry.is_some() && o.entry == entry {
                        o.start = t;
                        o.from_snapshot = false;
                        self.last_time = t;
                        return out;
                    }
                    // mpv always ends a file before starting one; a missing end is not ours.
                    self.close(t, "unknown", &mut out);
                }
                self.open_play(e.seq, entry, t, false, &mut out);
            }
            "end-file" => {
                let entry = entry_id(&e.data);
                let matches = self
                    .open
                    .as_ref()
                    .is_some_and(|o| o.entry.is_none() || entry.is_none() || o.entry == entry);
                if matches {
                    let reason = e.data.get("reason").and_then(Value::as_str).unwrap_or("");
                    if reason == "redirect" {
                        // A playlist file replaced by its contents: not a play.
                        self.open = None;
                    } else {
                        let reason = if reason.is_empty() { "unknown" } else { reason };
                        self.close(t, reason, &mut out);
                    }
                }
            }
            "playlist-entries" => {
                if let Some(m) = e.data.as_object() {
                    for (id, f) in m {
                        if let (Ok(id), Some(f)) = (id.parse::<i64>(), f.as_str()) {
                            self.entries.insert(id, f.to_string());
                        }
                    }
                }
                self.resolve(&mut out);
            }
            "path" => {
                if let Some(p) = e.data.as_str() {
                    let (path, is_stream) = media_path(p, &self.working_dir);
                    self.seen_path = Some(path.clone());
                    if let Some(o) = self.open.as_mut() {
                        // Only when the entry's own name is unknown: mpv's `path` may already
                        // be the next file's.
                        if o.path.is_none()
                            && o.entry.is_none_or(|id| !self.entries.contains_key(&id))
                        {
                            o.path = Some((path, is_stream));
                        }
                    }
                    self.resolve(&mut out);
                }
            }
            "media-title" => {
                self.title = self
                    .seen_path
                    .clone()
                    .map(|p| (p, e.data.as_str().map(str::to_string)));
                self.apply_details();
            }
            "duration" => {
                self.duration = self.seen_path.clone().map(|p| (p, e.data.as_f64()));
                self.apply_details();
            }
            "metadata" => {
                self.metadata = self
                    .seen_path
                    .clone()
                    .map(|p| (p, e.data.as_object().cloned().unwrap_or_default()));
                self.apply_details();
            }
            "paused" | "resumed" | "seek" => {
                let now_paused = match e.name.as_str() {
                    "paused" => true,
                    "resumed" => false,
                    _ => self.paused,
                };
                let changed = now_paused != self.paused;
                self.paused = now_paused;
                if let Some(o) = self.open.as_mut() {
                    if changed || e.name == "seek" {
                        o.actions.push(Action {
                            since_started: t - o.start,
                            action: e.name.clone(),
                            percentage: e.data.get("percent-pos").and_then(Value::as_f64),
                        });
                    }
                    if changed && now_paused {
                        o.paused_at = Some(t);
                    } else if changed {
                        if let Some(at) = o.paused_at.take() {
                            o.pause += (t - at).max(0.0);
                        }
                    }
                }
            }
            "disconnected" => {
                let reason = match e.data.get("reason").and_then(Value::as_str) {
                    Some("quit") => "quit",
                    _ => "crash",
                };
                self.close(t, reason, &mut out);
            }
            // file-loaded, playlist-pos, playlist-count, idle-active: the boundaries above
            // say all they would.
            _ => {}
        }
        self.last_time = self.last_time.max(t);
        out
    }

    /// A new connection: the state mpv was in when it began.
    fn connected(&mut self, e: &Event, out: &mut Vec<Change>) {
        let t = e.time;
        let d = &e.data;
        let pid = d.get("pid").and_then(Value::as_i64);
        if let Some(w) = d.get("working-directory").and_then(Value::as_str) {
            self.working_dir = w.to_string();
        }
        let playing = d.get("playing").filter(|p| p.is_object());
        let playing_id = playing.and_then(|p| p.get("id")).and_then(Value::as_i64);
        let same_mpv = pid.is_some() && pid == self.pid;
        if !same_mpv {
            // Another process under the same socket name: its playlist ids start again.
            self.entries.clear();
        }
        if let Some(o) = &self.open {
            let continues = same_mpv && o.entry.is_some() && o.entry == playing_id;
            if !continues {
                let at = self.last_time.max(o.start);
                self.close(at, "unknown", out);
            }
        }
        self.pid = pid;
        if let (Some(id), Some(f)) = (
            playing_id,
            playing
                .and_then(|p| p.get("filename"))
                .and_then(Value::as_str),
        ) {
            self.entries.insert(id, f.to_string());
        }
        self.paused = d.get("pause").and_then(Value::as_bool).unwrap_or(false);
        if self.open.is_none() && playing_id.is_some() {
            // Started before we were connected: dated by how far mpv got into it.
            let pos = d
                .get("time-pos")
                .and_then(Value::as_f64)
                .filter(|p| p.is_finite() && *p > 0.0)
                .unwrap_or(0.0);
            self.open_play(e.seq, playing_id, t - pos, true, out);
        }
    }

    fn open_play(
        &mut self,
        key: i64,
        entry: Option<i64>,
        start: f64,
        from_snapshot: bool,
        out: &mut Vec<Change>,
    ) {
        self.open = Some(Open {
            key,
            entry,
            from_snapshot,
            start,
            path: None,
            announced: false,
            title: None,
            duration: None,
            metadata: None,
            pause: 0.0,
            paused_at: self.paused.then_some(start),
            actions: Vec::new(),
        });
        self.resolve(out);
    }

    /// Names the open play from its playlist entry when known, and announces it.
    fn resolve(&mut self, out: &mut Vec<Change>) {
        let Some(o) = self.open.as_mut() else { return };
        if let Some(f) = o.entry.and_then(|id| self.entries.get(&id)) {
            o.path = Some(media_path(f, &self.working_dir));
        }
        if let (Some((path, is_stream)), false) = (&o.path, o.announced) {
            o.announced = true;
            out.push(Change::Started {
                key: o.key,
                time: o.start,
                path: path.clone(),
                is_stream: *is_stream,
            });
        }
        self.apply_details();
    }

    /// Title, duration and metadata reported for the open play's path become its own.
    fn apply_details(&mut self) {
        let Some(o) = self.open.as_mut() else { return };
        let Some((path, _)) = &o.path else { return };
        if let Some((p, v)) = &self.title {
            if p == path {
                o.title.clone_from(v);
            }
        }
        if let Some((p, v)) = &self.duration {
            if p == path {
                o.duration = *v;
            }
        }
        if let Some((p, v)) = &self.metadata {
            if p == path {
                o.metadata = Some(v.clone());
            }
        }
    }

    fn close(&mut self, end: f64, reason: &str, out: &mut Vec<Change>) {
        let Some(mut o) = self.open.take() else {
            return;
        };
        let end = end.max(o.start);
        if let Some(at) = o.paused_at.take() {
            o.pause += (end - at).max(0.0);
        }
        let Some((path, is_stream)) = o.path else {
            tracing::warn!(
                entry = o.entry,
                "an mpv play whose file was never named is left out"
            );
            return;
        };
        out.push(Change::Ended(LivePlay {
            key: o.key,
            play: Play {
                path,
                is_stream,
                start_time: o.start,
                end_time: end,
                pause_duration: o.pause,
                media_duration: o.duration,
                media_title: o.title,
                actions: o.actions,
                metadata: o.metadata.unwrap_or_default(),
            },
            end_reason: reason.to_string(),
        }));
    }
}

/// The finished plays of a whole sequence of events (a play still open is left out).
pub fn rebuild(events: &[Event], home: &str) -> Vec<LivePlay> {
    let mut r = Rebuild::new(home);
    events
        .iter()
        .flat_map(|e| r.feed(e))
        .filter_map(|c| match c {
            Change::Ended(p) => Some(p),
            Change::Started { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Events numbered in the order given.
    fn events(list: &[(f64, &str, Value)]) -> Vec<Event> {
        list.iter()
            .enumerate()
            .map(|(i, (t, name, data))| Event {
                seq: i as i64 + 1,
                time: *t,
                name: name.to_string(),
                data: data.clone(),
            })
            .collect()
    }

    fn summary(plays: &[LivePlay]) -> Vec<(String, f64, f64, String)> {
        plays
            .iter()
            .map(|p| {
                (
                    p.play.path.rsplit('/').next().unwrap().to_string(),
                    p.play.start_time,
                    p.play.end_time,
                    p.end_reason.clone(),
                )
            })
            .collect()
    }

    fn connected(t: f64, pid: i64) -> (f64, &'static str, Value) {
        (
            t,
            "connected",
            json!({"pid": pid, "working-directory": "/music", "playing": null, "pause": false}),
        )
    }

    /// The order mpv 0.35 sent on one connection (recorded): five files appended, three
    /// `playlist-next` 20 ms apart, one `playlist-prev`, then `loadfile a.ogg replace` and
    /// `quit`. The new `playlist-pos` (and the new playlist) always came before the `end-file`
    /// of the file left.
    #[test]
    fn position_before_end_file_loses_no_play() {
        let e = events(&[
            connected(0.0, 15063),
            (0.01, "playlist-count", json!(0)),
            (0.275, "start-file", json!({"playlist_entry_id": 1})),
            (0.275, "path", json!("/tmp/a.ogg")),
            (0.275, "media-title", json!("a.ogg")),
            (0.275, "playlist-pos", json!(0)),
            (0.275, "playlist-entries", json!({"1": "/tmp/a.ogg"})),
            (0.279, "playlist-count", json!(5)),
            (
                0.281,
                "playlist-entries",
                json!({"2": "/tmp/b.ogg", "3": "/tmp/c.ogg", "4": "/tmp/d.ogg", "5": "/tmp/e.ogg"}),
            ),
            (0.293, "file-loaded", json!({})),
            (0.293, "media-title", json!("a")),
            (0.293, "duration", json!(3.0)),
            (0.7775, "playlist-pos", json!(1)),
            (
                0.7778,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 1}),
            ),
            (0.7780, "start-file", json!({"playlist_entry_id": 2})),
            (0.7785, "path", json!("/tmp/b.ogg")),
            (0.7785, "media-title", json!("b.ogg")),
            (0.7938, "file-loaded", json!({})),
            (0.7938, "media-title", json!("b")),
            (0.7938, "duration", json!(3.0)),
            (0.7976, "playlist-pos", json!(2)),
            (
                0.7981,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 2}),
            ),
            (0.7981, "start-file", json!({"playlist_entry_id": 3})),
            (0.7981, "path", json!("/tmp/c.ogg")),
            (0.8183, "playlist-pos", json!(3)),
            (
                0.8183,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 3}),
            ),
            (0.8185, "start-file", json!({"playlist_entry_id": 4})),
            (0.8185, "path", json!("/tmp/d.ogg")),
            (0.8384, "playlist-pos", json!(2)),
            (
                0.8388,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 4}),
            ),
            (0.8389, "start-file", json!({"playlist_entry_id": 3})),
            (0.8394, "path", json!("/tmp/c.ogg")),
            // loadfile a.ogg replace: the position stays 0... of a new playlist.
            (1.1387, "playlist-pos", json!(0)),
            (1.1387, "playlist-count", json!(1)),
            (1.1387, "playlist-entries", json!({"6": "/tmp/a.ogg"})),
            (
                1.1396,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 3}),
            ),
            (1.1397, "start-file", json!({"playlist_entry_id": 6})),
            (1.1399, "path", json!("/tmp/a.ogg")),
            (
                1.6395,
                "end-file",
                json!({"reason": "quit", "playlist_entry_id": 6}),
            ),
            (1.64, "disconnected", json!({"reason": "quit"})),
        ]);
        let plays = rebuild(&e, "/home");
        let s = |n: &str, a: f64, b: f64, r: &str| (n.to_string(), a, b, r.to_string());
        assert_eq!(
            summary(&plays),
            [
                s("a.ogg", 0.275, 0.7778, "stop"),
                s("b.ogg", 0.7780, 0.7981, "stop"),
                s("c.ogg", 0.7981, 0.8183, "stop"),
                s("d.ogg", 0.8185, 0.8388, "stop"),
                s("c.ogg", 0.8389, 1.1396, "stop"),
                s("a.ogg", 1.1397, 1.6395, "quit"),
            ]
        );
        assert_eq!(plays[0].play.media_title.as_deref(), Some("a"));
        assert_eq!(plays[0].play.media_duration, Some(3.0));
        assert_eq!(plays[1].play.media_title.as_deref(), Some("b"));
        assert_eq!(
            plays[2].play.media_duration, None,
            "c was skipped before it loaded"
        );
        let keys: Vec<i64> = plays.iter().map(|p| p.key).collect();
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys, unique, "the replayed c is a play of its own");
    }

    /// Events that arrived in the same microsecond are all kept: they are told apart by their
    /// sequence, not their time.
    #[test]
    fn equal_timestamps_lose_nothing() {
        let t = 1_700_000_000.123456;
        let e = events(&[
            connected(t, 1),
            (t, "playlist-entries", json!({"1": "a.ogg", "2": "b.ogg"})),
            (t, "start-file", json!({"playlist_entry_id": 1})),
            (t, "playlist-pos", json!(1)),
            (t, "playlist-count", json!(2)),
            (
                t,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 1}),
            ),
            (t, "start-file", json!({"playlist_entry_id": 2})),
            (
                t,
                "end-file",
                json!({"reason": "eof", "playlist_entry_id": 2}),
            ),
        ]);
        let plays = rebuild(&e, "/home");
        assert_eq!(
            summary(&plays),
            [
                ("a.ogg".to_string(), t, t, "stop".to_string()),
                ("b.ogg".to_string(), t, t, "eof".to_string())
            ]
        );
        assert_eq!(
            plays[0].play.path, "/music/a.ogg",
            "relative to mpv's directory"
        );
    }

    /// The same orders make mpv-history-daemon's rules lose the next file: kept as a
    /// reminder of why the live capture does not use them.
    #[test]
    fn the_daemon_rules_lose_the_file_after_a_skip() {
        let daemon = json!({
            "0.1": {"playlist-pos": 0}, "0.2": {"path": "/tmp/a.ogg"},
            "0.7775": {"playlist-pos": 1}, "0.7778": {"eof": null},
            "0.7785": {"path": "/tmp/b.ogg"},
            "3.8": {"eof": null}, "3.9": {"mpv-quit": 3.9}
        });
        let theirs = super::super::history::plays(daemon.as_object().unwrap(), "x", "/");
        assert_eq!(theirs.len(), 1, "b is lost: {theirs:?}");
        assert!(
            theirs[0].end_time - theirs[0].start_time < 0.001,
            "a is dated from the next position: {theirs:?}"
        );
        let e = events(&[
            connected(0.0, 1),
            (
                0.05,
                "playlist-entries",
                json!({"1": "/tmp/a.ogg", "2": "/tmp/b.ogg"}),
            ),
            (0.1, "start-file", json!({"playlist_entry_id": 1})),
            (0.7775, "playlist-pos", json!(1)),
            (
                0.7778,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 1}),
            ),
            (0.778, "start-file", json!({"playlist_entry_id": 2})),
            (
                3.8,
                "end-file",
                json!({"reason": "eof", "playlist_entry_id": 2}),
            ),
        ]);
        assert_eq!(rebuild(&e, "/").len(), 2);
    }

    #[test]
    fn a_file_playing_when_the_capture_connects_is_dated_by_its_position() {
        let e = events(&[
            (
                100.0,
                "connected",
                json!({"pid": 7, "working-directory": "/w", "time-pos": 12.5, "pause": false,
                       "playing": {"id": 4, "filename": "x.ogg"}}),
            ),
            (101.0, "paused", json!({"percent-pos": 10.0})),
            (103.0, "resumed", json!({"percent-pos": 10.0})),
            (
                110.0,
                "end-file",
                json!({"reason": "eof", "playlist_entry_id": 4}),
            ),
        ]);
        let p = rebuild(&e, "/");
        assert_eq!(summary(&p), [("x.ogg".into(), 87.5, 110.0, "eof".into())]);
        assert_eq!(p[0].play.path, "/w/x.ogg");
        assert_eq!(p[0].play.pause_duration, 2.0);
        assert_eq!(p[0].play.actions.len(), 2);
        assert_eq!(p[0].key, 1, "named by the connection event");
    }

    #[test]
    fn a_start_file_racing_the_connection_snapshot_is_one_play() {
        let e = events(&[
            (
                100.0,
                "connected",
                json!({"pid": 7, "playing": {"id": 4, "filename": "/x.ogg"}}),
            ),
            (99.99, "start-file", json!({"playlist_entry_id": 4})),
            (
                110.0,
                "end-file",
                json!({"reason": "eof", "playlist_entry_id": 4}),
            ),
        ]);
        assert_eq!(
            summary(&rebuild(&e, "/")),
            [("x.ogg".into(), 99.99, 110.0, "eof".into())]
        );
    }

    #[test]
    fn reconnections_continue_a_play_of_the_same_mpv_and_not_of_another() {
        let e = events(&[
            connected(0.0, 7),
            (
                0.1,
                "playlist-entries",
                json!({"1": "/a.ogg", "2": "/b.ogg"}),
            ),
            (0.2, "start-file", json!({"playlist_entry_id": 1})),
            // airlog restarted; the same mpv still plays entry 1.
            (
                5.0,
                "connected",
                json!({"pid": 7, "playing": {"id": 1, "filename": "/a.ogg"}, "time-pos": 4.8}),
            ),
            (
                9.0,
                "end-file",
                json!({"reason": "eof", "playlist_entry_id": 1}),
            ),
            (9.1, "start-file", json!({"playlist_entry_id": 2})),
            (9.5, "seek", json!({"percent-pos": 50.0})),
            // A new mpv under the same socket name: entry 1 is another file now.
            (
                20.0,
                "connected",
                json!({"pid": 8, "playing": {"id": 1, "filename": "/c.ogg"}, "time-pos": 1.0}),
            ),
            (30.0, "disconnected", json!({"reason": "closed"})),
        ]);
        let s = |n: &str, a: f64, b: f64, r: &str| (n.to_string(), a, b, r.to_string());
        assert_eq!(
            summary(&rebuild(&e, "/")),
            [
                s("a.ogg", 0.2, 9.0, "eof"),
                s("b.ogg", 9.1, 9.5, "unknown"),
                s("c.ogg", 19.0, 30.0, "crash"),
            ]
        );
    }

    #[test]
    fn redirects_are_no_plays_missing_ends_are_unknown_and_pauses_span_files() {
        let e = events(&[
            connected(0.0, 1),
            (0.1, "playlist-entries", json!({"1": "/list.m3u"})),
            (0.2, "start-file", json!({"playlist_entry_id": 1})),
            (
                0.3,
                "end-file",
                json!({"reason": "redirect", "playlist_entry_id": 1}),
            ),
            (
                0.4,
                "playlist-entries",
                json!({"2": "/a.ogg", "3": "https://radio.example/live"}),
            ),
            (0.5, "start-file", json!({"playlist_entry_id": 2})),
            (1.0, "paused", json!({"percent-pos": 5.0})),
            (2.0, "start-file", json!({"playlist_entry_id": 3})),
            (4.0, "resumed", json!({"percent-pos": 0.0})),
            (
                5.0,
                "end-file",
                json!({"reason": "error", "playlist_entry_id": 3}),
            ),
        ]);
        let p = rebuild(&e, "/");
        let s = |n: &str, a: f64, b: f64, r: &str| (n.to_string(), a, b, r.to_string());
        assert_eq!(
            summary(&p),
            [
                s("a.ogg", 0.5, 2.0, "unknown"),
                s("live", 2.0, 5.0, "error")
            ]
        );
        assert_eq!(
            (p[0].play.pause_duration, p[1].play.pause_duration),
            (1.0, 2.0)
        );
        assert!(p[1].play.is_stream);
    }

    #[test]
    fn details_follow_the_path_they_were_reported_for() {
        let e = events(&[
            connected(0.0, 1),
            (
                0.1,
                "playlist-entries",
                json!({"1": "/a.ogg", "2": "/b.ogg"}),
            ),
            (0.2, "start-file", json!({"playlist_entry_id": 1})),
            (0.3, "path", json!("/a.ogg")),
            (0.4, "duration", json!(60.0)),
            // b's values, read by mpv before the end of a was sent.
            (1.0, "path", json!("/b.ogg")),
            (1.0, "duration", json!(30.0)),
            (1.0, "media-title", json!("Bee")),
            (
                1.1,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 1}),
            ),
            (1.2, "start-file", json!({"playlist_entry_id": 2})),
            (
                2.0,
                "end-file",
                json!({"reason": "stop", "playlist_entry_id": 2}),
            ),
        ]);
        let p = rebuild(&e, "/");
        assert_eq!(
            (p[0].play.media_duration, p[0].play.media_title.as_deref()),
            (Some(60.0), None)
        );
        assert_eq!(
            (p[1].play.media_duration, p[1].play.media_title.as_deref()),
            (Some(30.0), Some("Bee"))
        );
    }
}
