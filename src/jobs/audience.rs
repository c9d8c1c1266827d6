//! The audience job: keeps every station's rollups (src/audience/rollup.rs) current. A run
//! recomputes only the local days that new listening touched: days overlapped by stream events
//! that arrived since the run before last (ids; a batch committed late is still taken), and days
//! around player events that changed (recorded by triggers), then the months of those days from
//! their day blocks. Its cost follows the new data, not the length of the history. Any change
//! of the rules (settings, time zone, streams) rebuilds the station's rollups from the start.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::PgConnection;

use super::{Outcome, Recorded, Trigger};
use crate::audience::figures::Thresholds;
use crate::audience::items::ItemAudience;
use crate::audience::period::Span;
use crate::audience::rollup::{self, Block, Kind, Piece};
use crate::audience::{assemble, By, Validity};
use crate::config::Settings;
use crate::db;
use crate::db::audience::{RollupState, StoredBlock, StreamRow};
use crate::db::playout::StationRow;

/// The name of the job in `job_run`, the API and the command line.
pub const NAME: &str = "audience";

/// Its advisory lock key ("airl" in the high bits, apart from the player-event jobs).
const LOCK_KEY: i64 = 0x6169_726c_0000_0100;

/// Player plays read either side of a period: a player session is judged (long enough or not)
/// on its whole run of plays, which may begin or end on a neighbouring day. Both the direct
/// computation and the rollups read this much, so they judge alike.
pub const PLAY_CONTEXT: Duration = Duration::days(1);

/// The rules listening is counted by, from the settings.
pub struct Rules {
    pub validity: Validity,
    pub thresholds: Thresholds,
    /// A pause longer than this ends a player session.
    pub gap_s: f64,
    /// Listening of an item that makes a performance, in microseconds.
    pub min_performance_us: i64,
}

impl Rules {
    pub fn of(settings: &Settings) -> Rules {
        let a = &settings.audience;
        Rules {
            validity: Validity {
                robots: crate::domain::robots::Robots::new(&a.bot_allow, &a.bot_deny),
                relay_addresses: a.relay_addresses.clone(),
                min_session_s: a.min_session_s as f64,
            },
            thresholds: Thresholds {
                aqh_min_s: 300.0,
                cume_min_s: a.cume_min_s as f64,
            },
            gap_s: settings.jobs.session_gap_s as f64,
            min_performance_us: (a.min_performance_s * 1e6).round() as i64,
        }
    }
}

/// What a station's rollups depend on besides the listening itself; stored with them, so
/// rollups made under other rules are never read and get rebuilt.
pub fn fingerprint(settings: &Settings, tz: Tz, streams: &[StreamRow]) -> String {
    use sha1::{Digest, Sha1};
    let a = &settings.audience;
    let text = format!(
        "v2|{}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}",
        a.min_session_s,
        a.min_performance_s,
        a.cume_min_s,
        settings.jobs.session_gap_s,
        a.relay_addresses,
        a.bot_allow,
        a.bot_deny,
        tz.name(),
        streams
            .iter()
            .map(|s| (&s.kind, &s.pattern))
            .collect::<Vec<_>>()
    );
    hex::encode(Sha1::digest(text.as_bytes()))
}

/// The station's time zone (the default station zone if it is not a known one).
pub fn zone_of(settings: &Settings, station: &StationRow) -> Tz {
    station
        .time_zone
        .parse()
        .unwrap_or(settings.station.time_zone.0)
}

/// Runs the job once, recorded in `job_run`; the rows it reports are station-days recomputed.
pub fn run(
    conn: &mut PgConnection,
    settings: &Settings,
    trigger: Trigger,
) -> anyhow::Result<Outcome> {
    let recorded = Recorded {
        name: NAME,
        lock_key: LOCK_KEY,
        timeout_s: settings.jobs.timeout_s,
        trigger,
        covered: None,
    };
    recorded.run(conn, |conn| Ok(roll_up(conn, settings, Utc::now())? as i64))
}

/// Brings every station's rollups up to date as of `now`; returns the station-days recomputed.
pub fn roll_up(
    conn: &mut PgConnection,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let high_water = db::audience::high_water(conn)?;
    let mut days = 0;
    for station in db::playout::stations(conn)? {
        days += roll_up_station(conn, settings, &station, now, high_water)?;
    }
    db::audience::trim_player_changes(conn)?;
    if let Some(cutoff) = retention_cutoff(settings, now) {
        let removed = db::audience::remove_stream_events_before(conn, cutoff)?;
        if removed > 0 {
            tracing::info!(removed, %cutoff, "stream events past their retention removed");
        }
    }
    Ok(days)
}

/// The instant before which stream events are no longer kept, when a retention is set.
pub fn retention_cutoff(settings: &Settings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match settings.audience.stream_events_retention_days {
        0 => None,
        days => Some(now - Duration::days(days as i64)),
    }
}

fn roll_up_station(
    conn: &mut PgConnection,
    settings: &Settings,
    station: &StationRow,
    now: DateTime<Utc>,
    (stream_hw, dirty_hw): (i64, i64),
) -> anyhow::Result<usize> {
    let tz = zone_of(settings, station);
    let streams = db::audience::streams(conn, station.id)?;
    let rules_fp = fingerprint(settings, tz, &streams);
    let state = db::audience::rollup_state(conn, station.id)?;
    // Today's listening is taken as far as it has arrived; later listening on a day after
    // today (clocks ahead) is taken once that day comes.
    let today = now.with_timezone(&tz).date_naive();
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let mut days = BTreeSet::new();
    // Which stream events are new: those above the last run's highest id, and those between
    // the two runs before if a batch committed late (ids are taken before commit).
    let (stream_prev, dirty_prev) = match &state {
        Some(s) if s.rules == rules_fp => {
            if !streams.is_empty() {
                let late =
                    db::audience::stream_events_between(conn, s.stream_seen_prev, s.stream_seen)?
                        != s.stream_seen_count;
                let after = if late {
                    s.stream_seen_prev
                } else {
                    s.stream_seen
                };
                days.extend(db::audience::stream_event_days(conn, after, tz.name())?);
                for r in db::audience::player_changes(conn, s.dirty_seen_prev)? {
                    add_days(
                        &mut days,
                        local(r.start - PLAY_CONTEXT),
                        local(r.end + PLAY_CONTEXT),
                    );
                }
            }
            (s.stream_seen, s.dirty_seen)
        }
        _ => {
            // With a retention, days whose stream events are gone cannot be made again: their
            // blocks stay as they were made.
            let keep_before = retention_cutoff(settings, now)
                .map(|c| rollup::day_of(tz, local(c)).end)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            let cleared = db::audience::clear_blocks(conn, station.id, keep_before)?;
            tracing::info!(
                station = station.name,
                blocks = cleared,
                "audience rollups (re)built from the start: new station or rules changed"
            );
            if !streams.is_empty() {
                // The days with listening of any station (a superset of this one's).
                days.extend(db::audience::stream_event_days(conn, 0, tz.name())?);
                days.extend(db::audience::player_event_days(
                    conn,
                    tz.name(),
                    PLAY_CONTEXT,
                )?);
                let first_kept = local(keep_before);
                days.retain(|d| *d >= first_kept);
            }
            (stream_hw, dirty_hw)
        }
    };
    // Items on air: a new entry has an audience of its own and ends the item before it.
    let log_after = match &state {
        Some(s) if s.rules == rules_fp => s.log_seen,
        _ => 0,
    };
    let (log_days, log_seen) = db::item_audience::log_days(conn, station.id, log_after, tz.name())?;
    for d in log_days {
        add_days(&mut days, d - Duration::days(1), d);
    }
    days.retain(|d| *d <= today);
    let rules = Rules::of(settings);
    // Weeks and months: one gaining a day it had nothing of takes the day in (a union of
    // disjoint blocks); one whose days changed is made again from its days.
    let mut wider: BTreeMap<(Kind, DateTime<Utc>), Wider> = BTreeMap::new();
    for date in &days {
        let span = rollup::day_of(tz, *date);
        let had = db::audience::has_blocks(conn, station.id, Kind::Day, span.start)?;
        let blocks = day_blocks(conn, station.id, tz, *date, &rules)?;
        item_audience(conn, station.id, span, now, &rules, &rules_fp)?;
        db::audience::replace_blocks(
            conn,
            station.id,
            &[Kind::QuarterHour, Kind::Day],
            span,
            &blocks,
        )?;
        for (kind, of) in [
            (Kind::Week, rollup::week_of(tz, *date)),
            (Kind::Month, rollup::month_of(tz, *date)),
        ] {
            let e = wider.entry((kind, of.start)).or_insert_with(|| Wider {
                span: of,
                changed: false,
                new_days: Vec::new(),
            });
            e.changed |= had;
            e.new_days
                .extend(blocks.iter().filter(|b| b.kind == Kind::Day).cloned());
        }
    }
    for (
        (kind, _),
        Wider {
            span,
            changed,
            new_days,
        },
    ) in wider
    {
        let parts = if changed {
            db::audience::day_blocks_in(conn, station.id, span)?
        } else {
            let mut parts = db::audience::blocks_at(conn, station.id, kind, span.start)?;
            parts.extend(new_days);
            parts
        };
        let mut by_group: BTreeMap<String, Vec<Block>> = BTreeMap::new();
        for b in parts {
            by_group.entry(b.group).or_default().push(b.block);
        }
        let blocks: Vec<StoredBlock> = by_group
            .into_iter()
            .map(|(group, parts)| StoredBlock {
                kind,
                group,
                block: rollup::combine(span, &parts, rules.thresholds),
            })
            .collect();
        db::audience::replace_blocks(conn, station.id, &[kind], span, &blocks)?;
    }
    let stream_seen_count = db::audience::stream_events_between(conn, stream_prev, stream_hw)?;
    db::audience::save_rollup_state(
        conn,
        &RollupState {
            station_id: station.id,
            rules: rules_fp,
            stream_seen: stream_hw,
            stream_seen_prev: stream_prev,
            stream_seen_count,
            dirty_seen: dirty_hw,
            dirty_seen_prev: dirty_prev,
            as_of: now,
            log_seen,
        },
    )?;
    if !days.is_empty() {
        tracing::info!(
            station = station.name,
            days = days.len(),
            "audience rollups updated"
        );
    }
    Ok(days.len())
}

/// A week or month to bring up to date after its days were.
struct Wider {
    span: Span,
    /// Whether one of its days had blocks before (then it is made again from its days).
    changed: bool,
    /// The day blocks just made.
    new_days: Vec<StoredBlock>,
}

fn add_days(days: &mut BTreeSet<NaiveDate>, from: NaiveDate, to: NaiveDate) {
    let mut d = from;
    while d <= to {
        days.insert(d);
        d += Duration::days(1);
    }
}

/// The quarter-hour and day blocks of one local day of a station, for the whole station and
/// each source and stream.
pub fn day_blocks(
    conn: &mut PgConnection,
    station_id: i64,
    tz: Tz,
    date: NaiveDate,
    rules: &Rules,
) -> anyhow::Result<Vec<StoredBlock>> {
    let day = rollup::day_of(tz, date);
    let assembled = listening(conn, station_id, day, rules, Some(By::Stream))?;
    let inside: Vec<_> = assembled
        .sessions
        .iter()
        .filter(|s| s.span.clip(&day).is_some())
        .collect();
    let keys: Vec<String> = inside.iter().map(|s| s.listener.clone()).collect();
    let ids = db::audience::listener_ids(conn, &keys)?;
    let mut groups: BTreeMap<String, Vec<Piece>> = BTreeMap::new();
    for s in inside {
        let Some(id) = ids.get(&s.listener) else {
            anyhow::bail!("listener {:?} missing from the dictionary", s.listener);
        };
        let piece = Piece {
            listener: *id,
            span: s.span,
            starts_session: s.starts_session,
        };
        groups.entry(String::new()).or_default().push(piece);
        let source = s.group.split(':').next().unwrap_or_default();
        groups
            .entry(format!("source:{source}"))
            .or_default()
            .push(piece);
        groups
            .entry(format!("stream:{}", s.group))
            .or_default()
            .push(piece);
    }
    groups.entry(String::new()).or_default();
    let mut out = Vec::new();
    for (group, pieces) in groups {
        let excluded: &[_] = if group.is_empty() {
            &assembled.excluded
        } else {
            &[]
        };
        let quarters = rollup::quarter_blocks(&pieces, excluded, day, rules.thresholds);
        let whole = rollup::combine(day, &quarters, rules.thresholds);
        out.extend(quarters.into_iter().map(|block| StoredBlock {
            kind: Kind::QuarterHour,
            group: group.clone(),
            block,
        }));
        out.push(StoredBlock {
            kind: Kind::Day,
            group,
            block: whole,
        });
    }
    Ok(out)
}

/// How long an item still on air (no next entry, no known length) counts as lasting: up to now,
/// at most this long.
pub const OPEN_ITEM_CAP: Duration = Duration::hours(6);

/// Valid listening of a station over `span`, one listener model (see [`assemble`]).
pub fn listening(
    conn: &mut PgConnection,
    station_id: i64,
    span: Span,
    rules: &Rules,
    by: Option<By>,
) -> anyhow::Result<crate::audience::Assembled> {
    let streams = db::audience::stream_sessions(conn, Some(station_id), span)?;
    let context = Span::new(span.start - PLAY_CONTEXT, span.end + PLAY_CONTEXT);
    let plays = db::audience::player_plays(conn, Some(station_id), context)?;
    Ok(assemble(streams, plays, &rules.validity, rules.gap_s, by))
}

/// The audience of a station's items that went on air in `period` (from the listening up to
/// the end of the last of them), stored in place of what was there.
pub fn item_audience(
    conn: &mut PgConnection,
    station_id: i64,
    period: Span,
    now: DateTime<Utc>,
    rules: &Rules,
    rules_fp: &str,
) -> anyhow::Result<usize> {
    let items = db::item_audience::item_spans(conn, station_id, period, now, OPEN_ITEM_CAP)?;
    let audiences = match items.iter().map(|i| i.span.end).max() {
        None => Vec::new(),
        Some(end) => {
            let reach = Span::new(period.start, end.max(period.start));
            let heard = listening(conn, station_id, reach, rules, None)?;
            crate::audience::items::audience(&heard.sessions, &items, rules.min_performance_us)
        }
    };
    db::item_audience::replace(conn, station_id, period, &audiences, rules_fp)?;
    Ok(audiences.len())
}

/// The audience of one as-run entry (a sound or track on air): the stored one while nothing
/// changed under it, else computed now. None when the entry is not a sound or track.
pub fn one_item(
    conn: &mut PgConnection,
    settings: &Settings,
    log_id: i64,
) -> anyhow::Result<Option<(ItemAudience, &'static str)>> {
    let Some((station_id, date)) = db::item_audience::on_air_entry(conn, log_id)? else {
        return Ok(None);
    };
    let at = Span::new(date, date + Duration::microseconds(1));
    let now = Utc::now();
    let Some(item) = db::item_audience::item_spans(conn, station_id, at, now, OPEN_ITEM_CAP)?
        .into_iter()
        .find(|i| i.log_id == log_id)
    else {
        return Ok(None);
    };
    let stored = db::item_audience::stored(conn, &[log_id])?
        .into_iter()
        .next();
    if let (Some(stored), Some(state)) = (stored, db::audience::rollup_state(conn, station_id)?) {
        if stored.span == item.span
            && !db::audience::pending_since(conn, &state, item.span, PLAY_CONTEXT)?
        {
            return Ok(Some((stored, "stored")));
        }
    }
    let rules = Rules::of(settings);
    let heard = listening(conn, station_id, item.span, &rules, None)?;
    let a = crate::audience::items::audience(&heard.sessions, &[item], rules.min_performance_us);
    Ok(a.into_iter().next().map(|a| (a, "computed")))
}
