-- What royalty and licensing reports need of a recording, on sounds and on the tracks inside
-- them: album, label (the marketing label), ISRC, composer/author; tracks get a duration.
ALTER TABLE sound
    ADD COLUMN album    text NOT NULL DEFAULT '',
    ADD COLUMN label    text NOT NULL DEFAULT '',
    ADD COLUMN isrc     text NOT NULL DEFAULT '' CHECK (isrc = '' OR isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$'),
    ADD COLUMN composer text NOT NULL DEFAULT '';
ALTER TABLE track
    ADD COLUMN album      text NOT NULL DEFAULT '',
    ADD COLUMN label      text NOT NULL DEFAULT '',
    ADD COLUMN isrc       text NOT NULL DEFAULT '' CHECK (isrc = '' OR isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$'),
    ADD COLUMN composer   text NOT NULL DEFAULT '',
    ADD COLUMN duration_s double precision CHECK (duration_s >= 0);

-- The audience of each as-run entry (an ON_AIR sound or a TRACK), from its start to its end
-- (the next sound of the station, the next track of the sound, or the sound's known end),
-- kept by the audience job. Never removed by any clean-up of raw events.
CREATE TABLE item_audience (
    log_id              bigint           PRIMARY KEY REFERENCES onair_log (id) ON DELETE CASCADE,
    station_id          bigint           NOT NULL REFERENCES station (id) ON DELETE CASCADE,
    start_at            timestamptz      NOT NULL,
    end_at              timestamptz      NOT NULL,
    listeners_at_start  integer          NOT NULL,
    performances        integer          NOT NULL,
    listening_us        bigint           NOT NULL,
    rules               text             NOT NULL,
    computed_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX item_audience_station_start ON item_audience (station_id, start_at);

-- The as-run log entries already taken into item audience (see audience_rollup_state).
ALTER TABLE audience_rollup_state
    ADD COLUMN log_seen bigint NOT NULL DEFAULT 0;
