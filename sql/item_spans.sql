-- The items (ON_AIR sounds and TRACKs) of station $1 that went on air in [$2, $3), and when
-- each ended: a sound at the station's next sound or at its known end (its duration from where
-- it started playing), whichever is first; a track at the sound's next track, the sound's end
-- or its own known end. An item with no end yet ends at $4 (now), at most $5 after its start.
WITH sound_item AS (
    SELECT l.id, l.date,
           least(nxt.date, l.date + make_interval(secs => s.duration_s - l.position_s)) AS end_at
    FROM onair_log l
    LEFT JOIN sound s ON s.id = l.sound_id
    LEFT JOIN LATERAL (
        SELECT n.date FROM onair_log n
        WHERE n.station_id = l.station_id AND n.type = 'on_air' AND n.track_id IS NULL
          AND (n.date > l.date OR (n.date = l.date AND n.id > l.id))
        ORDER BY n.date, n.id
        LIMIT 1
    ) nxt ON true
    -- Sounds from a day before: the parents of tracks in the range.
    WHERE l.station_id = $1 AND l.type = 'on_air' AND l.track_id IS NULL
      AND l.date >= $2::timestamptz - interval '1 day' AND l.date < $3
),
track_item AS (
    SELECT t.id, t.date,
           least(nxt.date, p.end_at, t.date + make_interval(secs => tr.duration_s)) AS end_at
    FROM onair_log t
    JOIN sound_item p ON p.id = t.parent_id
    LEFT JOIN track tr ON tr.id = t.track_id
    LEFT JOIN LATERAL (
        SELECT n.date FROM onair_log n
        WHERE n.parent_id = t.parent_id AND n.track_id IS NOT NULL
          AND (n.date > t.date OR (n.date = t.date AND n.id > t.id))
        ORDER BY n.date, n.id
        LIMIT 1
    ) nxt ON true
    WHERE t.station_id = $1 AND t.track_id IS NOT NULL AND t.date >= $2 AND t.date < $3
),
items AS (
    SELECT id, date, end_at FROM sound_item WHERE date >= $2
    UNION ALL
    SELECT id, date, end_at FROM track_item
)
SELECT id AS log_id, date AS start_at,
       greatest(date, coalesce(end_at, least($4, date + $5))) AS end_at
FROM items
ORDER BY date, id
