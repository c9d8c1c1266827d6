-- Audience rollups: blocks of figures per quarter-hour, local day and local month of a station,
-- kept current by the `audience` job, so a long period is read from a few blocks. Cume is kept
-- exactly as listener sets over a dense dictionary of listeners (see src/audience/rollup.rs).

-- Listener keys (address + user agent) and signed-in identities, numbered densely.
CREATE TABLE audience_listener (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key  text    NOT NULL UNIQUE
);

-- One block of one group: '' is the whole station (listeners de-duplicated across groups),
-- 'source:<kind>' and 'stream:<kind>:<pattern>' the breakdowns. kind: 0 quarter-hour, 1 day,
-- 2 month, 3 week (from Monday). Blocks without listening, sessions or exclusions are not stored.
CREATE TABLE audience_block (
    station_id          bigint      NOT NULL REFERENCES station (id) ON DELETE CASCADE,
    kind                smallint    NOT NULL CHECK (kind IN (0, 1, 2, 3)),
    start_at            timestamptz NOT NULL,
    grp                 text        NOT NULL,
    end_at              timestamptz NOT NULL,
    listening_us        bigint      NOT NULL,
    aqh_persons         bigint      NOT NULL,
    sessions            bigint      NOT NULL,
    peak                bigint      NOT NULL,
    peak_at             timestamptz,
    -- How many listeners reach the Cume minimum inside the block (its own Cume), and who:
    -- their ids (LEB128 deltas or a bitset) and the others present with their microseconds of
    -- listening. A period of one block reads the count; a union reads the sets.
    cume                bigint      NOT NULL,
    qualified           bytea       NOT NULL,
    partial             bytea       NOT NULL,
    excluded_robot      bigint      NOT NULL,
    excluded_relay      bigint      NOT NULL,
    excluded_too_short  bigint      NOT NULL,
    PRIMARY KEY (station_id, kind, start_at, grp)
);
-- The sets are read whole and are mostly incompressible (bitsets, deltas): stored out of line
-- without compression, so a year's months are read without decompressing them.
ALTER TABLE audience_block ALTER COLUMN qualified SET STORAGE EXTERNAL,
                           ALTER COLUMN partial SET STORAGE EXTERNAL;

-- Where a station's rollups stand: the rules they were made with (any change rebuilds them),
-- the stream events and player-event changes already in, and the instant they are current to.
-- stream_seen is the highest stream event id at the last run, stream_seen_prev at the one
-- before, stream_seen_count how many ids between the two the last run saw: more now means a
-- batch committed late below stream_seen, and that stretch is looked at again.
CREATE TABLE audience_rollup_state (
    station_id        bigint      PRIMARY KEY REFERENCES station (id) ON DELETE CASCADE,
    rules             text        NOT NULL,
    stream_seen       bigint      NOT NULL,
    stream_seen_prev  bigint      NOT NULL,
    stream_seen_count bigint      NOT NULL,
    dirty_seen        bigint      NOT NULL,
    dirty_seen_prev   bigint      NOT NULL,
    as_of             timestamptz NOT NULL
);

-- Time ranges of player events that changed (inserted, closed, repaired, deleted), for the
-- audience job to recompute; filled by statement triggers like stats_player_dirty.
CREATE TABLE audience_dirty (
    id  bigserial   PRIMARY KEY,
    lo  timestamptz NOT NULL,
    hi  timestamptz NOT NULL
);

CREATE FUNCTION audience_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audience_dirty (lo, hi)
    SELECT min(time), max(coalesce(time_end, time)) FROM changed HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER audience_player_inserted AFTER INSERT ON stats_player_event
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audience_mark_dirty();
CREATE TRIGGER audience_player_updated AFTER UPDATE ON stats_player_event
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audience_mark_dirty();
CREATE TRIGGER audience_player_updated_old AFTER UPDATE ON stats_player_event
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audience_mark_dirty();
CREATE TRIGGER audience_player_deleted AFTER DELETE ON stats_player_event
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audience_mark_dirty();

-- Listening overlapping a day is found from two small index ranges: what started within a day
-- before it (time_start), and the rare connections longer than a day (these partial indexes,
-- which ordinary rows never enter), so a day of an old year is read without the year.
CREATE INDEX stats_stream_event_long ON stats_stream_event (time_end)
    WHERE time_end - time_start > interval '1 day';
CREATE INDEX stats_player_event_long ON stats_player_event (time_end)
    WHERE time_end - time > interval '1 day';
