-- What a delivery reports about its as-run log entry: the entry, its station, and the sound,
-- track and diffusion it names (each null when it names none).
SELECT st.name AS station, l.id AS entry_id, l.type AS entry_type, l.date, l.source, l.comment,
       l.path, l.position_s,
       s.title AS sound_title, s.artist AS sound_artist, s.duration_s AS sound_duration_s,
       t.title AS track_title, t.artist AS track_artist,
       d.id AS diffusion_id, d.title AS diffusion_title, d.start AS diffusion_start,
       d."end" AS diffusion_end
FROM onair_log l
JOIN station st ON st.id = l.station_id
LEFT JOIN sound s ON s.id = l.sound_id
LEFT JOIN track t ON t.id = l.track_id
LEFT JOIN diffusion d ON d.id = l.diffusion_id
WHERE l.id = $1
