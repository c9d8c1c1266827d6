-- Each captured mpv event gets an identity of its own, a sequence per instance: arrival times
-- collide (two events in one microsecond), so they cannot be the key.
ALTER TABLE mpv_event ADD COLUMN seq bigint;
UPDATE mpv_event e SET seq = n.seq
FROM (SELECT id, row_number() OVER (PARTITION BY instance ORDER BY time, id) AS seq FROM mpv_event) n
WHERE n.id = e.id;
ALTER TABLE mpv_event ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX mpv_event_instance_seq ON mpv_event (instance, seq);

-- An imported mpv-history-daemon file and a live socket of the same mpv are one instance: the
-- socket's name, without the file's ".json".
UPDATE mpv_play SET instance = regexp_replace(instance, '\.json$', '') WHERE source = 'import';
CREATE INDEX mpv_play_instance_path ON mpv_play (instance, path, start_time);
