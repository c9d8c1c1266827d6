DROP INDEX mpv_play_instance_path;
UPDATE mpv_play SET instance = instance || '.json'
WHERE source = 'import' AND split_part(source_key, ':', 2) = instance || '.json';
DROP INDEX mpv_event_instance_seq;
ALTER TABLE mpv_event DROP COLUMN seq;
