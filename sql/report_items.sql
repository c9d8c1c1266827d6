-- The items of station $1 that went on air in [$2, $3) with what music reports need: the
-- recording (a track's own tags, a sound's for a sound without tracks), its length, and the
-- stored audience (null where the audience job has not reached it). A sound with tracks is
-- reported by its tracks; a sound without tracks or artist (talk, an untagged jingle) is not a
-- recording and is left out.
SELECT l.id, l.date, l.track_id IS NOT NULL AS is_track,
       coalesce(t.artist, s.artist, '') AS artist,
       coalesce(t.title, s.title, '') AS title,
       coalesce(t.album, s.album, '') AS album,
       coalesce(t.label, s.label, '') AS label,
       coalesce(t.isrc, s.isrc, '') AS isrc,
       coalesce(t.composer, s.composer, '') AS composer,
       coalesce(t.duration_s, CASE WHEN l.track_id IS NULL THEN s.duration_s END) AS duration_s,
       ia.end_at, ia.performances, ia.listening_us, ia.listeners_at_start
FROM onair_log l
LEFT JOIN track t ON t.id = l.track_id
LEFT JOIN sound s ON s.id = l.sound_id AND l.track_id IS NULL
LEFT JOIN item_audience ia ON ia.log_id = l.id
WHERE l.station_id = $1 AND l.type = 'on_air' AND l.date >= $2 AND l.date < $3
  AND (l.track_id IS NOT NULL
       OR (s.artist <> '' AND NOT EXISTS (SELECT 1 FROM track x WHERE x.sound_id = s.id)))
ORDER BY l.date, l.id
