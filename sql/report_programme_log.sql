-- Every entry of station $1's as-run log in [$2, $3), for a programme log: sounds and tracks
-- with their titles and ends, and what the station started or cancelled.
SELECT l.id, l.type, l.date, l.track_id IS NOT NULL AS is_track, l.source,
       coalesce(t.title, s.title, d.title, l.comment, '') AS title,
       coalesce(t.artist, s.artist, '') AS artist,
       l.diffusion_id, ia.end_at
FROM onair_log l
LEFT JOIN track t ON t.id = l.track_id
LEFT JOIN sound s ON s.id = l.sound_id AND l.track_id IS NULL
LEFT JOIN diffusion d ON d.id = l.diffusion_id AND l.type IN ('start', 'cancel')
LEFT JOIN item_audience ia ON ia.log_id = l.id
WHERE l.station_id = $1 AND l.date >= $2 AND l.date < $3
ORDER BY l.date, l.id
