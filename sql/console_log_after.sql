-- Entries of one station's as-run log written after entry $2 (by id, the order they were
-- written in, whatever their dates), oldest first, at most $3: what a live console page has
-- not seen yet.
SELECT l.id, st.name AS station, l.type, l.date, l.source, l.comment, l.path,
       l.sound_id, l.track_id, l.diffusion_id, l.parent_id, l.tags, l.date_from, l.resume_of, l.position_s
FROM onair_log l JOIN station st ON st.id = l.station_id
WHERE st.name = $1 AND l.id > $2
ORDER BY l.id
LIMIT $3
