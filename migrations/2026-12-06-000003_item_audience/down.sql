ALTER TABLE audience_rollup_state DROP COLUMN log_seen;
DROP TABLE item_audience;
ALTER TABLE track DROP COLUMN duration_s, DROP COLUMN composer, DROP COLUMN isrc,
    DROP COLUMN label, DROP COLUMN album;
ALTER TABLE sound DROP COLUMN composer, DROP COLUMN isrc, DROP COLUMN label, DROP COLUMN album;
