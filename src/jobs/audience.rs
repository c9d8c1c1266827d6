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
        }
    }
}

/// What a station's rollups depend on besides the listening itself; stored with them, so
/// rollups made under other rules are never read and get rebuilt.
pub fn fingerprint(settings: &Settings, tz: Tz, streams: &[StreamRow]) -> String {
    use sha1::{Digest, Sha1};
    let a = &settings.audience;
    let text = format!(
        "v1|{}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}",
        a.min_session_s,
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
    Ok(days)
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
            let cleared = db::audience::clear_blocks(conn, station.id)?;
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
            }
            (stream_hw, dirty_hw)
        }
    };
    days.retain(|d| *d <= today);
    let rules = Rules::of(settings);
    // Weeks and months: one gaining a day it had nothing of takes the day in (a union of
    // disjoint blocks); one whose days changed is made again from its days.
    let mut wider: BTreeMap<(Kind, DateTime<Utc>), Wider> = BTreeMap::new();
    for date in &days {
        let span = rollup::day_of(tz, *date);
        let had = db::audience::has_blocks(conn, station.id, Kind::Day, span.start)?;
        let blocks = day_blocks(conn, station.id, tz, *date, &rules)?;
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
    let streams = db::audience::stream_sessions(conn, Some(station_id), day)?;
    let context = Span::new(day.start - PLAY_CONTEXT, day.end + PLAY_CONTEXT);
    let plays = db::audience::player_plays(conn, Some(station_id), context)?;
    let assembled = assemble(
        streams,
        plays,
        &rules.validity,
        rules.gap_s,
        Some(By::Stream),
    );
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
