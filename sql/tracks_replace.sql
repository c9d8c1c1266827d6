-- Makes the tracks of sound $1 those given (one array element per track): a track at a
-- timestamp already there is updated in place (the as-run log points at its id), the others
-- are added, and tracks at timestamps no longer given are removed.
WITH given AS (
    SELECT * FROM unnest($2::float8[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::float8[])
           AS g(timestamp_s, artist, title, album, label, isrc, composer, duration_s)
),
gone AS (
    DELETE FROM track t
    WHERE t.sound_id = $1 AND t.timestamp_s NOT IN (SELECT timestamp_s FROM given)
)
INSERT INTO track (sound_id, timestamp_s, artist, title, album, label, isrc, composer, duration_s)
SELECT $1, timestamp_s, artist, title, album, label, isrc, composer, duration_s FROM given
ON CONFLICT (sound_id, timestamp_s) DO UPDATE SET
    artist = excluded.artist, title = excluded.title, album = excluded.album,
    label = excluded.label, isrc = excluded.isrc, composer = excluded.composer,
    duration_s = excluded.duration_s
