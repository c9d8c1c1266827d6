//! The monitor's rules, without I/O: which of the output's emissions are new, whether each is
//! a sound starting or one resumed after an interruption, when it really went on air, which
//! tracks were heard, and what to do about each push of a started diffusion. The monitor
//! observes Liquidsoap, calls these, then acts; unit tests feed them recorded observations.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::protocol::OnAir;

/// How an emission is told apart from the others in the output's metadata history.
pub type EmissionId = (String, Option<DateTime<Utc>>);

/// The identity of an emission: its request, and the reported time when there is one.
pub fn emission_id(e: &OnAir) -> EmissionId {
    let key = e
        .request_key()
        .unwrap_or_else(|| format!("{}@{}", e.uri, e.air_time.timestamp_millis()));
    (key, e.reported_at)
}

/// How many emissions at the start of `now` (oldest first) were already seen in `prev`: the
/// history is a window that slides, so the longest tail of `prev` that begins `now` is old.
pub fn seen_count(prev: &[EmissionId], now: &[EmissionId]) -> usize {
    for skip in 0..prev.len() {
        let tail = &prev[skip..];
        if tail.len() <= now.len() && now[..tail.len()] == *tail {
            return tail.len();
        }
    }
    0
}

/// What one poll knows besides the history.
#[derive(Debug, Clone, Default)]
pub struct PollContext {
    pub polled_at: DateTime<Utc>,
    /// The previous poll of the same Liquidsoap run, when this one follows it directly: what is
    /// new since then aired after it.
    pub last_poll: Option<DateTime<Utc>>,
    /// Sound durations in seconds, by path.
    pub durations: HashMap<String, f64>,
    /// When each push was sent, by push id: its request cannot air before.
    pub sent_at: HashMap<i64, DateTime<Utc>>,
}

/// Whether an emission starts a play or resumes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start,
    Resume,
}

/// An emission to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Aired {
    /// Its index in the history.
    pub index: usize,
    pub kind: Kind,
    /// When it went on air, as well as it can be known.
    pub date: DateTime<Utc>,
    /// How `date` was found.
    pub date_from: &'static str,
}

/// A reported time this much after the request's own on-air time is a resume, not a start
/// (the request's time is whole seconds, floored).
const RESUME_AFTER: f64 = 1.5;

fn secs(s: f64) -> Duration {
    Duration::microseconds((s * 1e6).round() as i64)
}

fn mid(a: DateTime<Utc>, b: DateTime<Utc>) -> DateTime<Utc> {
    a + (b - a) / 2
}

/// Plans the emissions of `history` (oldest first) from `fresh_from` on. A repeat of the
/// emission before it (same request) is a metadata update, not a play. The dates: the time the
/// script reported; else Liquidsoap's on-air time of the request, narrowed by the polls that
/// bracket it and by when it was pushed; for a resume without a report, the polls bracketing it,
/// or the end of what played before it.
pub fn plan_emissions(history: &[OnAir], fresh_from: usize, ctx: &PollContext) -> Vec<Aired> {
    let mut out: Vec<Aired> = Vec::new();
    for i in fresh_from..history.len() {
        let e = &history[i];
        let pred = i.checked_sub(1).map(|p| &history[p]);
        let key = e.request_key();
        if let (Some(p), Some(k)) = (pred, &key) {
            if p.request_key().as_ref() == Some(k) {
                continue;
            }
        }
        let seen_before = key.is_some() && history[..i].iter().any(|h| h.request_key() == key);
        let reported_late = e
            .reported_at
            .is_some_and(|r| (r - e.air_time).num_milliseconds() as f64 / 1000.0 > RESUME_AFTER);
        let kind = if seen_before || reported_late {
            Kind::Resume
        } else {
            Kind::Start
        };
        let not_before = e.push_id.and_then(|p| ctx.sent_at.get(&p)).copied();
        let (date, date_from) = match (e.reported_at, kind) {
            (Some(r), _) => (r, "liquidsoap_report"),
            (None, Kind::Start) => start_date(e, ctx, not_before),
            (None, Kind::Resume) => {
                let pred_date = pred.map(|p| {
                    out.iter()
                        .find(|a| a.index == i - 1)
                        .map(|a| a.date)
                        .unwrap_or(p.reported_at.unwrap_or(p.air_time))
                });
                match (ctx.last_poll, pred_date) {
                    (Some(last), pd) => {
                        let lo = pd.map_or(last, |d| d.max(last));
                        (mid(lo.min(ctx.polled_at), ctx.polled_at), "poll")
                    }
                    (None, Some(pd)) => match pred.and_then(|p| ctx.durations.get(&p.uri)) {
                        Some(d) => ((pd + secs(*d)).min(ctx.polled_at), "estimate"),
                        None => (ctx.polled_at, "poll"),
                    },
                    (None, None) => (ctx.polled_at, "poll"),
                }
            }
        };
        out.push(Aired {
            index: i,
            kind,
            date,
            date_from,
        });
    }
    out
}

/// A start without a report: the request's on-air time is whole seconds, floored, so the true
/// time is in [t, t + 1); it is also after the previous poll (when the emission is new since
/// then), before this poll, and not before the push. The middle of what is left.
fn start_date(
    e: &OnAir,
    ctx: &PollContext,
    not_before: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, &'static str) {
    let t = e.air_time;
    if e.air_time_from == "poll" {
        return (t, "poll");
    }
    let whole = t.timestamp_subsec_micros() == 0;
    let mut lo = t;
    let mut hi = if whole { t + Duration::seconds(1) } else { t };
    hi = hi.min(ctx.polled_at);
    for bound in [ctx.last_poll, not_before].into_iter().flatten() {
        lo = lo.max(bound);
    }
    if lo <= hi {
        (mid(lo, hi), e.air_time_from)
    } else {
        // Contradictory bounds (clocks apart): keep Liquidsoap's time, after the push.
        (not_before.map_or(t, |n| t.max(n)), e.air_time_from)
    }
}

/// A stretch of a sound heard without interruption: from `date`, `position_s` into the sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub date: DateTime<Utc>,
    pub position_s: f64,
}

/// The tracks (id, seconds into the sound) heard in `seg` by `until`, with their dates. Tracks
/// before the segment's position were heard before it (or skipped): not this segment's.
pub fn heard_tracks(
    tracks: &[(i64, f64)],
    seg: Segment,
    until: DateTime<Utc>,
) -> Vec<(i64, DateTime<Utc>)> {
    tracks
        .iter()
        .filter(|(_, t)| *t >= seg.position_s)
        .map(|(id, t)| (*id, seg.date + secs(t - seg.position_s)))
        .filter(|(_, at)| *at <= until)
        .collect()
}

/// Where a push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Written, not answered yet (a crash mid-push leaves this).
    Sending,
    Answered,
    /// The answer never came: Liquidsoap may or may not have queued it.
    Unknown,
    Found,
    /// Never sent (no connection).
    Unsent,
    Lost,
}

impl PushState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Sending => "sending",
            PushState::Answered => "answered",
            PushState::Unknown => "unknown",
            PushState::Found => "found",
            PushState::Unsent => "unsent",
            PushState::Lost => "lost",
        }
    }

    /// Reads the stored name.
    pub fn parse(s: &str) -> Option<PushState> {
        Some(match s {
            "sending" => PushState::Sending,
            "answered" => PushState::Answered,
            "unknown" => PushState::Unknown,
            "found" => PushState::Found,
            "unsent" => PushState::Unsent,
            "lost" => PushState::Lost,
            _ => return None,
        })
    }
}

/// One push of a diffusion's sound, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRecord {
    pub id: i64,
    pub position: i32,
    pub state: PushState,
    pub rid: Option<u64>,
    pub sent_at: DateTime<Utc>,
}

/// What Liquidsoap and the log show about a diffusion's pushes.
#[derive(Debug, Clone, Default)]
pub struct PushView {
    pub now: DateTime<Utc>,
    /// When the Liquidsoap now running started (from `uptime`), if known.
    pub booted_at: Option<DateTime<Utc>>,
    /// Requests Liquidsoap still holds (queued or playing).
    pub alive: HashSet<u64>,
    /// Push ids found on requests Liquidsoap holds or played, with their rid.
    pub found: HashMap<i64, u64>,
    /// Positions of the diffusion already heard.
    pub played: HashSet<i32>,
}

/// What to do about a diffusion's pushes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushPlan {
    /// Unanswered pushes now found in Liquidsoap (push id, rid).
    pub found: Vec<(i64, u64)>,
    /// Unanswered pushes now known lost.
    pub lost: Vec<i64>,
    /// Positions to push, in order.
    pub push: Vec<i32>,
    /// A push is still unaccounted for: nothing after it is pushed yet.
    pub waiting: bool,
}

/// How long an unanswered push may stay unseen before it is judged lost (without a restart).
pub const FIND_GRACE: Duration = Duration::seconds(30);
/// Pushes of one position whose requests died without a restart (a missing file, say).
pub const MAX_ATTEMPTS: usize = 3;

fn before_boot(view: &PushView, at: DateTime<Utc>) -> bool {
    // `uptime` is whole seconds: a push within a second of the boot is not called lost.
    view.booted_at
        .is_some_and(|b| at < b - Duration::seconds(1))
}

/// Decides, for a started diffusion of `positions` sounds, which unanswered pushes are found
/// or lost and which positions to push now. A push is never repeated while it may still be in
/// Liquidsoap: only a restart since it was sent, or `FIND_GRACE` without a trace of it, makes
/// it lost. Positions are pushed in order, none past one still unaccounted for.
pub fn plan_pushes(positions: i32, records: &[PushRecord], view: &PushView) -> PushPlan {
    let mut plan = PushPlan::default();
    let mut states: Vec<(PushRecord, PushState)> = Vec::new();
    for r in records {
        let mut state = r.state;
        if matches!(r.state, PushState::Unknown | PushState::Sending) {
            if let Some(rid) = view.found.get(&r.id) {
                plan.found.push((r.id, *rid));
                state = PushState::Found;
            } else if before_boot(view, r.sent_at) || view.now - r.sent_at > FIND_GRACE {
                plan.lost.push(r.id);
                state = PushState::Lost;
            }
        }
        states.push((r.clone(), state));
    }
    for p in 1..=positions {
        if view.played.contains(&p) {
            continue;
        }
        let mine: Vec<&(PushRecord, PushState)> =
            states.iter().filter(|(r, _)| r.position == p).collect();
        if mine
            .iter()
            .any(|(_, s)| matches!(s, PushState::Unknown | PushState::Sending))
        {
            plan.waiting = true;
            break;
        }
        let pending = mine.iter().any(|(r, s)| {
            matches!(s, PushState::Answered | PushState::Found)
                && !before_boot(view, r.sent_at)
                && r.rid
                    .or_else(|| view.found.get(&r.id).copied())
                    .is_some_and(|rid| view.alive.contains(&rid))
        });
        if pending {
            continue;
        }
        // Attempts a restart lost, or that never left, do not count against the sound.
        let failed = mine
            .iter()
            .filter(|(r, s)| *s != PushState::Unsent && !before_boot(view, r.sent_at))
            .count();
        if failed < MAX_ATTEMPTS {
            plan.push.push(p);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::liquidsoap::protocol::{on_air, parse_metadata_blocks};

    fn t(s: f64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros((s * 1e6) as i64).unwrap()
    }

    /// `airlog_out.metadata` recorded from Liquidsoap 2.1.3 running the shipped script: rotation
    /// sound a (rid 1), a show pushed by airlog (rid 3), then a resumed.
    const REPORTED: &str = "--- 3 ---\nrid=\"1\"\nairlog_on_air_ms=\"1795462576780\"\nsource=\"airlog_rotation\"\n\
filename=\"/tmp/lsx/a.ogg\"\non_air_timestamp=\"1795462576.00\"\n--- 2 ---\nrid=\"3\"\nairlog_on_air_ms=\"1795462578250\"\n\
airlog_push=\"77\"\nsource=\"airlog_queue\"\nfilename=\"/tmp/lsx/show.ogg\"\non_air_timestamp=\"1795462578.00\"\n\
--- 1 ---\nrid=\"1\"\nairlog_on_air_ms=\"1795462581210\"\nsource=\"airlog_rotation\"\nfilename=\"/tmp/lsx/a.ogg\"\n\
on_air_timestamp=\"1795462576.00\"";

    fn history(text: &str, polled: f64) -> Vec<OnAir> {
        let mut blocks = parse_metadata_blocks(text);
        blocks.reverse();
        blocks
            .into_iter()
            .filter_map(|(_, m)| on_air(m, chrono_tz::UTC, t(polled)))
            .collect()
    }

    fn unreported(text: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with("airlog_on_air_ms"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn reported_emissions_are_starts_and_a_resume_at_the_reported_times() {
        let h = history(REPORTED, 1_795_462_582.0);
        let ctx = PollContext {
            polled_at: t(1_795_462_582.0),
            ..Default::default()
        };
        let plan = plan_emissions(&h, 0, &ctx);
        let kinds: Vec<(Kind, DateTime<Utc>, &str)> =
            plan.iter().map(|a| (a.kind, a.date, a.date_from)).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Start, t(1_795_462_576.78), "liquidsoap_report"),
                (Kind::Start, t(1_795_462_578.25), "liquidsoap_report"),
                (Kind::Resume, t(1_795_462_581.21), "liquidsoap_report"),
            ]
        );
        assert_eq!(h[1].push_id, Some(77));
        // Seen alone (the start fell out of the window), a late report is still a resume.
        let plan = plan_emissions(&h[2..], 0, &ctx);
        assert_eq!(plan[0].kind, Kind::Resume);
    }

    #[test]
    fn without_reports_polls_narrow_the_whole_second_and_resumes_use_the_polls() {
        let h = history(&unreported(REPORTED), 1_795_462_581.4);
        let ids: Vec<EmissionId> = h.iter().map(emission_id).collect();
        // The previous poll (at 581.0) had seen a and the show.
        assert_eq!(seen_count(&ids[..2], &ids), 2);
        let ctx = PollContext {
            polled_at: t(1_795_462_581.4),
            last_poll: Some(t(1_795_462_581.0)),
            ..Default::default()
        };
        let plan = plan_emissions(&h, 2, &ctx);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].kind, Kind::Resume);
        assert_eq!(plan[0].date, t(1_795_462_581.2));
        assert_eq!(plan[0].date_from, "poll");

        // A start seen by the poll after it: between that poll and the whole second's end.
        let ctx = PollContext {
            polled_at: t(1_795_462_578.4),
            last_poll: Some(t(1_795_462_577.9)),
            sent_at: HashMap::from([(77, t(1_795_462_578.1))]),
            ..Default::default()
        };
        let plan = plan_emissions(&h[..2], 1, &ctx);
        // In [max(578.0, 577.9, pushed 578.1), min(579.0, 578.4)]: 578.25.
        assert_eq!(plan[0].date, t(1_795_462_578.25));
        assert_eq!(plan[0].date_from, "on_air_timestamp");

        // Right after airlog started: the resume is dated by the end of the show before it.
        let ctx = PollContext {
            polled_at: t(1_795_462_590.0),
            durations: HashMap::from([("/tmp/lsx/show.ogg".to_string(), 3.0)]),
            ..Default::default()
        };
        let plan = plan_emissions(&h, 0, &ctx);
        assert_eq!(plan[2].kind, Kind::Resume);
        assert_eq!(plan[2].date_from, "estimate");
        assert_eq!(plan[2].date, plan[1].date + Duration::seconds(3));
    }

    #[test]
    fn a_repeated_emission_of_the_same_request_is_an_update_and_the_window_slides() {
        let h = history(REPORTED, 1_795_462_582.0);
        let mut repeated = h.clone();
        let mut again = h[2].clone();
        again.reported_at = Some(t(1_795_462_583.0));
        repeated.push(again);
        let plan = plan_emissions(&repeated, 3, &PollContext::default());
        assert!(plan.is_empty(), "{plan:?}");

        let ids: Vec<EmissionId> = repeated.iter().map(emission_id).collect();
        assert_eq!(seen_count(&ids[..3], &ids[1..]), 2, "the oldest slid out");
        assert_eq!(seen_count(&ids[..3], &ids[3..]), 0);
        assert_eq!(seen_count(&[], &ids), 0);
    }

    #[test]
    fn tracks_follow_what_was_heard() {
        let tracks = [(1, 10.0), (2, 20.0), (3, 30.0)];
        let start = Segment {
            date: t(1000.0),
            position_s: 0.0,
        };
        // Interrupted at 1015: track 2 (due at 1020) was not heard in this segment.
        assert_eq!(
            heard_tracks(&tracks, start, t(1015.0)),
            vec![(1, t(1010.0))]
        );
        // Resumed at 1100, 15 s in: track 2 is heard at 1105, track 3 at 1115.
        let resumed = Segment {
            date: t(1100.0),
            position_s: 15.0,
        };
        assert_eq!(
            heard_tracks(&tracks, resumed, t(2000.0)),
            vec![(2, t(1105.0)), (3, t(1115.0))]
        );
    }

    fn rec(id: i64, position: i32, state: PushState, rid: Option<u64>, at: f64) -> PushRecord {
        PushRecord {
            id,
            position,
            state,
            rid,
            sent_at: t(at),
        }
    }

    #[test]
    fn an_unanswered_push_is_waited_for_then_found_never_sent_again() {
        let records = [rec(10, 1, PushState::Unknown, None, 100.0)];
        let mut view = PushView {
            now: t(106.0),
            booted_at: Some(t(0.0)),
            ..Default::default()
        };
        let plan = plan_pushes(2, &records, &view);
        assert!(plan.waiting && plan.push.is_empty() && plan.lost.is_empty());
        // The held push reached Liquidsoap: found, and the next sound follows it.
        view.now = t(109.0);
        view.found.insert(10, 5);
        view.alive.insert(5);
        let plan = plan_pushes(2, &records, &view);
        assert_eq!(plan.found, vec![(10, 5)]);
        assert_eq!(plan.push, vec![2]);
        assert!(!plan.waiting);
    }

    #[test]
    fn an_unanswered_push_is_lost_only_after_a_restart_or_the_grace_time() {
        let records = [
            rec(10, 1, PushState::Answered, Some(4), 100.0),
            rec(11, 2, PushState::Unknown, None, 100.5),
        ];
        let view = PushView {
            now: t(125.0),
            booted_at: Some(t(0.0)),
            alive: HashSet::from([4]),
            ..Default::default()
        };
        assert!(plan_pushes(2, &records, &view).waiting);
        let late = PushView {
            now: t(131.0),
            ..view.clone()
        };
        let plan = plan_pushes(2, &records, &late);
        assert_eq!((plan.lost.clone(), plan.push.clone()), (vec![11], vec![2]));
        // Liquidsoap restarted at 120: both are gone; the first was heard, the second is pushed.
        let restarted = PushView {
            now: t(122.0),
            booted_at: Some(t(120.0)),
            alive: HashSet::from([4]),
            played: HashSet::from([1]),
            ..Default::default()
        };
        let plan = plan_pushes(2, &records, &restarted);
        assert_eq!((plan.lost, plan.push), (vec![11], vec![2]));
    }

    #[test]
    fn queued_sounds_are_left_alone_and_dead_requests_are_retried_a_few_times() {
        let view = PushView {
            now: t(200.0),
            booted_at: Some(t(0.0)),
            alive: HashSet::from([4, 5]),
            ..Default::default()
        };
        let records = [
            rec(1, 1, PushState::Answered, Some(4), 100.0),
            rec(2, 2, PushState::Answered, Some(5), 100.0),
        ];
        assert_eq!(plan_pushes(2, &records, &view), PushPlan::default());
        // Nothing pushed yet: everything, in order.
        assert_eq!(plan_pushes(3, &[], &view).push, vec![1, 2, 3]);
        // A request that died (missing file) is pushed again, up to MAX_ATTEMPTS in all.
        let dead: Vec<PushRecord> = (0..MAX_ATTEMPTS as i64)
            .map(|i| rec(i, 1, PushState::Answered, Some(90 + i as u64), 100.0))
            .collect();
        assert!(plan_pushes(1, &dead[..1], &view).push == vec![1]);
        assert!(plan_pushes(1, &dead, &view).push.is_empty());
        // Connection failures sent nothing: they do not count.
        let unsent = vec![rec(1, 1, PushState::Unsent, None, 100.0); 5];
        assert_eq!(plan_pushes(1, &unsent, &view).push, vec![1]);
    }
}
