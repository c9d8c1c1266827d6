-- Player events from web players (play / pause / stop), with the columns of the openbroadcast
-- stats app so its SQL (the session query among it) runs unchanged.
CREATE TABLE stats_player_event (
    id                    bigserial     PRIMARY KEY,
    time                  timestamptz   NOT NULL,
    time_end              timestamptz   CHECK (time_end >= time),
    state                 text          NOT NULL
                          CHECK (state IN ('playing', 'paused', 'stopped', 'buffering')),
    max_duration          interval,
    calculated_duration_s numeric(10,3),
    obj_key               text          NOT NULL,
    source                text          NOT NULL CHECK (source IN ('live', 'on-demand', 'news')),
    user_identity         text          NOT NULL,
    device_key            text          NOT NULL,
    -- airlog's own: the client's clock (kept for reference and to recognise retries), and
    -- which rule closed the event (next, max_duration, cap, fix, client), for the audit.
    client_ts             timestamptz,
    closed_by             text
);

-- The composite index the cleanup rules and the session query walk; unique, so a trusted
-- backfill posted twice stores nothing twice.
CREATE UNIQUE INDEX stats_player_event_identity_time
    ON stats_player_event (user_identity, device_key, time, obj_key, state);
-- A browser retrying the same request sends the same client timestamp.
CREATE UNIQUE INDEX stats_player_event_client_retry
    ON stats_player_event (user_identity, device_key, client_ts, obj_key, state)
    WHERE client_ts IS NOT NULL;
CREATE INDEX stats_player_event_time_id ON stats_player_event (time, id);
CREATE INDEX stats_player_event_open ON stats_player_event (time) WHERE time_end IS NULL;

-- Devices whose events changed since sessions were last computed, and the earliest event
-- time that changed. Filled by statement triggers, consumed by the session job.
CREATE TABLE stats_player_dirty (
    user_identity text        NOT NULL,
    device_key    text        NOT NULL,
    since         timestamptz NOT NULL,
    PRIMARY KEY (user_identity, device_key)
);

CREATE FUNCTION stats_player_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stats_player_dirty (user_identity, device_key, since)
    SELECT user_identity, device_key, min(time) FROM changed GROUP BY user_identity, device_key
    ON CONFLICT (user_identity, device_key)
    DO UPDATE SET since = least(stats_player_dirty.since, excluded.since);
    RETURN NULL;
END $$;

CREATE TRIGGER stats_player_event_inserted AFTER INSERT ON stats_player_event
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_player_mark_dirty();
CREATE TRIGGER stats_player_event_updated AFTER UPDATE ON stats_player_event
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_player_mark_dirty();
-- An update can move an event earlier or to another device: mark where it was, too.
CREATE TRIGGER stats_player_event_updated_old AFTER UPDATE ON stats_player_event
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_player_mark_dirty();
CREATE TRIGGER stats_player_event_deleted AFTER DELETE ON stats_player_event
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stats_player_mark_dirty();

-- Listening sessions: runs of `playing` events of one (user_identity, device_key) with no gap
-- longer than the configured gap, kept when the summed playing time exceeds the minimum.
-- Numbers are unconstrained numeric so they equal the reference query's results exactly.
CREATE TABLE stats_player_session (
    id                          bigserial   PRIMARY KEY,
    time_start                  timestamptz NOT NULL,
    time_end                    timestamptz,
    duration_s                  numeric,
    duration_playing_s          numeric     NOT NULL,
    duration_playing_live_s     numeric     NOT NULL,
    duration_playing_ondemand_s numeric     NOT NULL,
    duration_playing_news_s     numeric     NOT NULL,
    user_identity               text        NOT NULL,
    device_key                  text        NOT NULL,
    remote_addr                 text,
    computed_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX stats_player_session_identity_start
    ON stats_player_session (user_identity, device_key, time_start);
CREATE INDEX stats_player_session_time_start_id ON stats_player_session (time_start, id);

-- The gap and minimum the stored sessions were computed with; a change forces a full rebuild.
CREATE TABLE stats_player_session_params (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    gap_s      integer     NOT NULL,
    min_s      integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Media durations known to airlog, looked up by obj_key for max_duration.
CREATE TABLE catalog_media (
    obj_key    text        PRIMARY KEY,
    duration   interval    NOT NULL CHECK (duration > interval '0'),
    title      text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Last sign of life of each device (heartbeats and player events), for "listeners now".
CREATE TABLE stats_heartbeat (
    device_key    text        PRIMARY KEY,
    user_identity text        NOT NULL,
    source        text        NOT NULL,
    obj_key       text,
    seen_at       timestamptz NOT NULL
);
CREATE INDEX stats_heartbeat_seen ON stats_heartbeat (seen_at);

-- Every job run, for the audit trail at /api/v1/jobs/.
CREATE TABLE job_run (
    id           bigserial   PRIMARY KEY,
    name         text        NOT NULL,
    trigger      text        NOT NULL,
    window_start timestamptz,
    window_end   timestamptz,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    rows_changed bigint,
    error        text
);
CREATE INDEX job_run_started ON job_run (started_at DESC, id DESC);
