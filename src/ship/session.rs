//! From hits to stream events: HLS requests grouped into listening sessions per (address,
//! user agent, stream), Icecast lines taken one for one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::Hit;
use crate::domain::stream_event::{Origin, WireStreamEvent};

/// A listening session still open, carried in the shipper's state across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    pub ip: IpAddr,
    pub user_agent: String,
    pub stream: String,
    /// The playlist path (the first `.m3u8` requested), else the stream directory.
    pub path: String,
    pub referer: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub bytes: u64,
    pub requests: u64,
}

/// The stream a request belongs to: its directory (`/hls/live/seg-1.ts` -> `/hls/live`).
pub fn stream_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// An event as the sender batches it: serialised once, in the wire form.
fn json(event: WireStreamEvent) -> Value {
    serde_json::to_value(event).expect("a stream event serialises")
}

impl OpenSession {
    /// The stream event this session becomes once closed.
    pub fn event(&self) -> WireStreamEvent {
        let seconds = (self.last - self.first).num_milliseconds() as f64 / 1000.0;
        WireStreamEvent {
            origin: Origin::Hls,
            ip: self.ip,
            method: "GET".into(),
            path: self.path.clone(),
            status: 200,
            bytes_sent: self.bytes,
            user_agent: self.user_agent.clone(),
            referer: self.referer.clone(),
            time_start: self.first,
            time_end: self.last,
            // A session's first request is never after its last.
            seconds_connected: seconds.round().max(0.0) as u64,
        }
    }
}

/// How far out of time order log lines may come by default (nginx workers write their own
/// buffers, so one log is not strictly ordered).
pub const DEFAULT_DISORDER: std::time::Duration = std::time::Duration::from_secs(5);

/// Groups HLS hits into sessions; a session ends when no request came for `gap`. Lines may come
/// up to `disorder` out of time order: a session is closed only once the newest time seen is
/// more than gap + disorder past its last request, and an earlier line moves its start back.
#[derive(Debug, Clone)]
pub struct Sessionizer {
    gap: Duration,
    disorder: Duration,
    open: BTreeMap<(String, String, String), OpenSession>,
    /// The newest log time seen.
    newest: Option<DateTime<Utc>>,
    /// Hits that came more than the disorder allowance after newer ones: the session they
    /// belong to may already be closed, so they may start a new one.
    pub late: u64,
    swept: Option<DateTime<Utc>>,
}

impl Sessionizer {
    pub fn new(gap: std::time::Duration, carried: Vec<OpenSession>) -> Sessionizer {
        let open = carried
            .into_iter()
            .map(|s| {
                (
                    (s.ip.to_string(), s.user_agent.clone(), s.stream.clone()),
                    s,
                )
            })
            .collect();
        Sessionizer {
            gap: Duration::from_std(gap).unwrap_or(Duration::seconds(20)),
            disorder: Duration::from_std(DEFAULT_DISORDER).unwrap_or_default(),
            open,
            newest: None,
            late: 0,
            swept: None,
        }
    }

    /// Tolerates lines up to `disorder` out of time order.
    pub fn with_disorder(mut self, disorder: std::time::Duration) -> Sessionizer {
        self.disorder = Duration::from_std(disorder).unwrap_or_default();
        self
    }

    /// The sessions still open, for the state file.
    pub fn open_sessions(&self) -> Vec<OpenSession> {
        self.open.values().cloned().collect()
    }

    /// Adds a hit; returns the events of sessions that ended before it (in log time).
    pub fn hit(&mut self, hit: &Hit) -> Vec<Value> {
        let mut ended = Vec::new();
        if self.newest.is_some_and(|n| n - hit.time > self.disorder) {
            self.late += 1;
        }
        let newest = self.newest.map_or(hit.time, |n| n.max(hit.time));
        self.newest = Some(newest);
        // Only what is older than the disorder allowance is settled.
        let settled = newest - self.disorder;
        // Sweeping every open session on every line would be quadratic; once a second of
        // log time is enough, as a session's end is its last request, not the sweep time.
        if self
            .swept
            .is_none_or(|s| settled - s >= Duration::seconds(1))
        {
            ended = self.close_idle(settled);
            self.swept = Some(settled);
        }
        let stream = stream_of(&hit.path);
        let key = (hit.ip.to_string(), hit.user_agent.clone(), stream.clone());
        match self.open.get_mut(&key) {
            Some(s) if hit.time - s.last <= self.gap && s.first - hit.time <= self.gap => {
                s.first = s.first.min(hit.time);
                s.last = s.last.max(hit.time);
                s.bytes += hit.bytes;
                s.requests += 1;
                if !s.path.ends_with(".m3u8") && hit.path.ends_with(".m3u8") {
                    s.path = hit.path.clone();
                }
            }
            _ => {
                if let Some(old) = self.open.remove(&key) {
                    ended.push(json(old.event()));
                }
                let path = if hit.path.ends_with(".m3u8") {
                    hit.path.clone()
                } else {
                    stream.clone()
                };
                self.open.insert(
                    key,
                    OpenSession {
                        ip: hit.ip,
                        user_agent: hit.user_agent.clone(),
                        stream,
                        path,
                        referer: hit.referer.clone(),
                        first: hit.time,
                        last: hit.time,
                        bytes: hit.bytes,
                        requests: 1,
                    },
                );
            }
        }
        ended
    }

    /// Closes sessions whose last request is more than the gap before `now`.
    pub fn close_idle(&mut self, now: DateTime<Utc>) -> Vec<Value> {
        let gap = self.gap;
        let done: Vec<_> = self
            .open
            .iter()
            .filter(|(_, s)| now - s.last > gap)
            .map(|(k, _)| k.clone())
            .collect();
        done.into_iter()
            .filter_map(|k| self.open.remove(&k))
            .map(|s| json(s.event()))
            .collect()
    }

    /// Closes everything (end of an imported file).
    pub fn close_all(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.open)
            .into_values()
            .map(|s| json(s.event()))
            .collect()
    }
}

/// An Icecast line is a whole connection: it ended at the line's time.
pub fn icecast_event(hit: &Hit) -> Value {
    let seconds = hit.seconds.unwrap_or(0);
    json(WireStreamEvent {
        origin: Origin::Icecast,
        ip: hit.ip,
        method: hit.method.clone(),
        path: hit.path.clone(),
        status: hit.status,
        bytes_sent: hit.bytes,
        user_agent: hit.user_agent.clone(),
        referer: hit.referer.clone(),
        // parse_line refuses seconds that leave no representable start; never panic here.
        time_start: Duration::try_seconds(seconds.min(i64::MAX as u64) as i64)
            .and_then(|d| hit.time.checked_sub_signed(d))
            .unwrap_or(hit.time),
        time_end: hit.time,
        seconds_connected: seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::parse::{parse_line, Format};

    fn hit(second: i64, ip: &str, ua: &str, path: &str, bytes: u64) -> Hit {
        let t = DateTime::from_timestamp(1_730_805_000 + second, 0).unwrap();
        let line = format!(
            r#"{ip} - - [{}] "GET {path} HTTP/1.1" 200 {bytes} "-" "{ua}""#,
            t.format("%d/%b/%Y:%H:%M:%S +0000")
        );
        parse_line(Format::NginxCombined, &line).unwrap()
    }

    #[test]
    fn requests_become_sessions_split_by_the_gap() {
        let mut s = Sessionizer::new(std::time::Duration::from_secs(15), Vec::new());
        let mut events = Vec::new();
        for (t, path) in [
            (0, "/hls/live/index.m3u8"),
            (6, "/hls/live/1.ts"),
            (12, "/hls/live/2.ts"),
        ] {
            events.extend(s.hit(&hit(t, "10.0.0.1", "VLC", path, 100)));
        }
        // Another listener, and the first coming back after more than the gap.
        events.extend(s.hit(&hit(13, "10.0.0.2", "Safari", "/hls/live/1.ts", 50)));
        events.extend(s.hit(&hit(40, "10.0.0.1", "VLC", "/hls/live/3.ts", 100)));
        assert_eq!(events.len(), 2, "{events:#?}");
        let first = events.iter().find(|e| e["ip"] == "10.0.0.1").unwrap();
        assert_eq!(first["bytes_sent"], 300);
        assert_eq!(first["seconds_connected"], 12);
        assert_eq!(first["path"], "/hls/live/index.m3u8");
        assert_eq!(first["time_start"], "2024-11-05T11:10:00.000000Z");
        let carried = s.open_sessions();
        assert_eq!(carried.len(), 1);
        let mut resumed = Sessionizer::new(std::time::Duration::from_secs(15), carried);
        let rest = resumed.close_all();
        assert_eq!(
            rest[0]["path"], "/hls/live",
            "no playlist seen: the stream directory"
        );
        assert_eq!(stream_of("/a.ts"), "/");
    }

    /// Sessions as (ip, time_start, time_end, bytes), sorted.
    fn summary(events: &[Value]) -> Vec<(String, String, String, u64)> {
        let mut out: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e["ip"].as_str().unwrap().to_string(),
                    e["time_start"].as_str().unwrap().to_string(),
                    e["time_end"].as_str().unwrap().to_string(),
                    e["bytes_sent"].as_u64().unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn lines_a_few_seconds_out_of_order_give_the_sessions_of_the_ordered_log() {
        // Three listeners fetching a segment every 2 s, one pausing 60 s in the middle; nginx
        // workers flush their buffers late, so lines come up to 4 s out of order.
        let mut hits = Vec::new();
        for (ip, skip) in [
            ("10.0.0.1", None),
            ("10.0.0.2", Some(60..120)),
            ("10.0.0.3", None),
        ] {
            for t in (0..300).step_by(2) {
                if skip.as_ref().is_some_and(|r| r.contains(&t)) {
                    continue;
                }
                hits.push((t, hit(t, ip, "AppleCoreMedia/1.0", "/hls/live/1.ts", 10)));
            }
        }
        hits.sort_by_key(|(t, h)| (*t, h.ip));
        let run = |hits: &[(i64, Hit)]| {
            let mut s = Sessionizer::new(std::time::Duration::from_secs(15), Vec::new());
            let mut events: Vec<Value> = hits.iter().flat_map(|(_, h)| s.hit(h)).collect();
            events.extend(s.close_all());
            summary(&events)
        };
        let ordered = run(&hits);
        // What the test expects of the ordered log: one session each, two for the pause.
        assert_eq!(ordered.len(), 4, "{ordered:#?}");
        assert!(ordered.contains(&(
            "10.0.0.1".into(),
            "2024-11-05T11:10:00.000000Z".into(),
            "2024-11-05T11:14:58.000000Z".into(),
            1500
        )));
        // Every other line written 3 s late, the first line of each session among them.
        let mut disordered = hits.clone();
        disordered.sort_by_key(|(t, h)| (*t + if t % 4 == 0 { 3 } else { 0 }, h.ip));
        assert_ne!(
            disordered.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            hits.iter().map(|(t, _)| *t).collect::<Vec<_>>()
        );
        assert_eq!(run(&disordered), ordered);
    }
}
