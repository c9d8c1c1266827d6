//! Queries on the catalogue: `sound` and its `track`s.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Jsonb, Nullable, Text};
use serde::Serialize;

use crate::db::Id;

/// A sound with its tracks.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct SoundRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Nullable<Double>)]
    pub duration_s: Option<f64>,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub artist: String,
    #[diesel(sql_type = Text)]
    pub album: String,
    /// The marketing label.
    #[diesel(sql_type = Text)]
    pub label: String,
    #[diesel(sql_type = Text)]
    pub isrc: String,
    #[diesel(sql_type = Text)]
    pub composer: String,
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = Text)]
    pub program: String,
    /// The tracks: id, timestamp (seconds into the sound), artist, title, album, label, isrc,
    /// composer, duration (seconds or null).
    #[diesel(sql_type = Jsonb)]
    pub tracks: serde_json::Value,
}

const SOUND_SELECT: &str = "SELECT s.id, s.path, s.duration_s, s.title, s.artist, s.album, s.label, s.isrc, \
     s.composer, s.type, s.program, \
     coalesce((SELECT jsonb_agg(jsonb_build_object('id', t.id, 'timestamp', t.timestamp_s, 'artist', t.artist, \
     'title', t.title, 'album', t.album, 'label', t.label, 'isrc', t.isrc, 'composer', t.composer, \
     'duration', t.duration_s) ORDER BY t.timestamp_s) FROM track t WHERE t.sound_id = s.id), '[]') AS tracks FROM sound s";

/// A sound to store, with its tracks.
#[derive(Debug, Clone, Default)]
pub struct NewSound {
    pub path: String,
    pub duration_s: Option<f64>,
    pub title: String,
    pub artist: String,
    pub album: String,
    pub label: String,
    /// Checked and normalised (`domain::recording::isrc`), or empty.
    pub isrc: String,
    pub composer: String,
    pub r#type: String,
    pub program: String,
    pub tracks: Vec<NewTrack>,
}

/// A track inside a sound, at seconds from its start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTrack {
    pub timestamp_s: f64,
    pub artist: String,
    pub title: String,
    pub album: String,
    pub label: String,
    pub isrc: String,
    pub composer: String,
    pub duration_s: Option<f64>,
}

/// Creates or updates the sound at `path` and its tracks. A track keeps its id while its
/// timestamp stays (log entries point at it); tracks no longer listed are removed.
pub fn upsert_sound(conn: &mut PgConnection, s: &NewSound) -> QueryResult<SoundRow> {
    conn.transaction(|conn| {
        let id = diesel::sql_query(include_str!("../../../sql/sound_upsert.sql"))
            .bind::<Text, _>(&s.path)
            .bind::<Nullable<Double>, _>(s.duration_s)
            .bind::<Text, _>(&s.title)
            .bind::<Text, _>(&s.artist)
            .bind::<Text, _>(&s.r#type)
            .bind::<Text, _>(&s.program)
            .bind::<Text, _>(&s.album)
            .bind::<Text, _>(&s.label)
            .bind::<Text, _>(&s.isrc)
            .bind::<Text, _>(&s.composer)
            .get_result::<Id>(conn)?
            .id;
        let t = &s.tracks;
        let col = |f: fn(&NewTrack) -> &String| t.iter().map(|x| f(x).clone()).collect::<Vec<_>>();
        diesel::sql_query(include_str!("../../../sql/tracks_replace.sql"))
            .bind::<BigInt, _>(id)
            .bind::<Array<Double>, _>(t.iter().map(|x| x.timestamp_s).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(col(|x| &x.artist))
            .bind::<Array<Text>, _>(col(|x| &x.title))
            .bind::<Array<Text>, _>(col(|x| &x.album))
            .bind::<Array<Text>, _>(col(|x| &x.label))
            .bind::<Array<Text>, _>(col(|x| &x.isrc))
            .bind::<Array<Text>, _>(col(|x| &x.composer))
            .bind::<Array<Nullable<Double>>, _>(t.iter().map(|x| x.duration_s).collect::<Vec<_>>())
            .execute(conn)?;
        diesel::sql_query(format!("{SOUND_SELECT} WHERE s.id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
    })
}

/// Sounds, optionally of one programme, by path.
pub fn sounds(
    conn: &mut PgConnection,
    program: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<SoundRow>> {
    diesel::sql_query(format!(
        "{SOUND_SELECT} WHERE ($1::text IS NULL OR s.program = $1) ORDER BY s.path LIMIT $2"
    ))
    .bind::<Nullable<Text>, _>(program)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// The sound stored for a file path, if any.
pub fn sound_by_path(conn: &mut PgConnection, path: &str) -> QueryResult<Option<SoundRow>> {
    diesel::sql_query(format!("{SOUND_SELECT} WHERE s.path = $1"))
        .bind::<Text, _>(path)
        .get_result(conn)
        .optional()
}

/// A track to log: its id and the seconds into the sound.
#[derive(Debug, Clone, QueryableByName)]
pub struct DueTrack {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Double)]
    pub timestamp_s: f64,
    #[diesel(sql_type = Text)]
    pub artist: String,
    #[diesel(sql_type = Text)]
    pub title: String,
}

/// Tracks of `sound_id` not yet logged under the sound log `parent_id`.
pub fn unlogged_tracks(
    conn: &mut PgConnection,
    sound_id: i64,
    parent_id: i64,
) -> QueryResult<Vec<DueTrack>> {
    diesel::sql_query(
        "SELECT t.id, t.timestamp_s, t.artist, t.title FROM track t WHERE t.sound_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM onair_log l WHERE l.parent_id = $2 AND l.track_id = t.id) ORDER BY t.timestamp_s",
    )
    .bind::<BigInt, _>(sound_id)
    .bind::<BigInt, _>(parent_id)
    .load(conn)
}

/// Programmes and their archive sounds, for the playlist files.
pub fn programme_playlists(conn: &mut PgConnection) -> QueryResult<Vec<(String, Vec<String>)>> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Text)]
        program: String,
        #[diesel(sql_type = Array<Text>)]
        paths: Vec<String>,
    }
    Ok(diesel::sql_query(
        "SELECT program, array_agg(path ORDER BY path) AS paths FROM sound \
         WHERE program <> '' AND type = 'archive' GROUP BY program ORDER BY program",
    )
    .load::<P>(conn)?
    .into_iter()
    .map(|p| (p.program, p.paths))
    .collect())
}

/// A catalogued sound's length in seconds, when known.
pub fn sound_duration(conn: &mut PgConnection, sound_id: i64) -> QueryResult<Option<f64>> {
    #[derive(QueryableByName)]
    struct D {
        #[diesel(sql_type = Nullable<Double>)]
        duration_s: Option<f64>,
    }
    diesel::sql_query("SELECT duration_s FROM sound WHERE id = $1")
        .bind::<BigInt, _>(sound_id)
        .get_result::<D>(conn)
        .map(|d| d.duration_s)
}
