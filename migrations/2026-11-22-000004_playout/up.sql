-- Stations, their catalogue and schedule, and the as-run log the playout monitors write.

CREATE TABLE station (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    time_zone        text        NOT NULL DEFAULT 'UTC',
    -- liquidsoap: `endpoint` is host:port or a socket path; none: nothing is monitored.
    streamer         text        NOT NULL DEFAULT 'liquidsoap' CHECK (streamer IN ('liquidsoap', 'none')),
    endpoint         text        NOT NULL DEFAULT '',
    queue_id         text        NOT NULL DEFAULT 'airlog_queue',
    output_id        text        NOT NULL DEFAULT 'airlog_out',
    playlist_dir     text        NOT NULL DEFAULT '',
    poll_ms          integer     NOT NULL DEFAULT 1000 CHECK (poll_ms BETWEEN 100 AND 60000),
    cancel_timeout_s integer     NOT NULL DEFAULT 1200 CHECK (cancel_timeout_s > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sound (
    id         bigserial        PRIMARY KEY,
    path       text             NOT NULL UNIQUE CHECK (path <> ''),
    duration_s double precision CHECK (duration_s >= 0),
    title      text             NOT NULL DEFAULT '',
    artist     text             NOT NULL DEFAULT '',
    type       text             NOT NULL DEFAULT 'other' CHECK (type IN ('archive', 'excerpt', 'other')),
    -- The programme the sound belongs to; each programme gets a playlist file.
    program    text             NOT NULL DEFAULT '',
    created_at timestamptz      NOT NULL DEFAULT now(),
    updated_at timestamptz      NOT NULL DEFAULT now()
);

-- Tracks inside a sound (a show's music), at seconds from the sound's start.
CREATE TABLE track (
    id          bigserial        PRIMARY KEY,
    sound_id    bigint           NOT NULL REFERENCES sound ON DELETE CASCADE,
    timestamp_s double precision NOT NULL CHECK (timestamp_s >= 0),
    artist      text             NOT NULL DEFAULT '',
    title       text             NOT NULL DEFAULT '',
    UNIQUE (sound_id, timestamp_s)
);

CREATE TABLE diffusion (
    id         bigserial   PRIMARY KEY,
    station_id bigint      NOT NULL REFERENCES station ON DELETE CASCADE,
    start      timestamptz NOT NULL,
    "end"      timestamptz NOT NULL CHECK ("end" > start),
    title      text        NOT NULL DEFAULT '',
    type       text        NOT NULL DEFAULT 'on_air' CHECK (type IN ('on_air', 'unconfirmed', 'cancel')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX diffusion_station_start ON diffusion (station_id, start);

-- The sounds a diffusion plays, in order.
CREATE TABLE diffusion_sound (
    diffusion_id bigint  NOT NULL REFERENCES diffusion ON DELETE CASCADE,
    position     integer NOT NULL,
    sound_id     bigint  NOT NULL REFERENCES sound,
    PRIMARY KEY (diffusion_id, position)
);

-- What was pushed to Liquidsoap for a diffusion: the request ids it answered, so a restart
-- that lost them is noticed and the diffusion pushed again (a push is never retried blindly).
CREATE TABLE diffusion_push (
    id           bigserial   PRIMARY KEY,
    diffusion_id bigint      NOT NULL REFERENCES diffusion ON DELETE CASCADE,
    attempt      integer     NOT NULL,
    position     integer     NOT NULL,
    rid          bigint,
    pushed_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (diffusion_id, attempt, position)
);

-- The as-run log.
CREATE TABLE onair_log (
    id           bigserial   PRIMARY KEY,
    station_id   bigint      NOT NULL REFERENCES station ON DELETE CASCADE,
    type         text        NOT NULL CHECK (type IN ('on_air', 'start', 'cancel', 'stop', 'other')),
    date         timestamptz NOT NULL,
    source       text        NOT NULL DEFAULT '',
    comment      text        NOT NULL DEFAULT '',
    path         text,
    sound_id     bigint      REFERENCES sound ON DELETE SET NULL,
    track_id     bigint      REFERENCES track ON DELETE SET NULL,
    diffusion_id bigint      REFERENCES diffusion ON DELETE SET NULL,
    -- A track's log points at the log of the sound it is in.
    parent_id    bigint      REFERENCES onair_log ON DELETE CASCADE,
    -- What the streamer said about it (tags), and how `date` was found.
    tags         jsonb       NOT NULL DEFAULT '{}',
    date_from    text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- No duplicates, whoever writes: a sound once per (station, source, file, air time), a track
-- once per sound play, and a diffusion is started or cancelled, once, never both.
CREATE UNIQUE INDEX onair_log_sound_once ON onair_log (station_id, source, path, date)
    WHERE type = 'on_air' AND track_id IS NULL;
CREATE UNIQUE INDEX onair_log_track_once ON onair_log (parent_id, track_id) WHERE track_id IS NOT NULL;
CREATE UNIQUE INDEX onair_log_diffusion_once ON onair_log (diffusion_id) WHERE type IN ('start', 'cancel');
CREATE INDEX onair_log_station_date ON onair_log (station_id, date DESC, id DESC);
CREATE INDEX onair_log_date ON onair_log (date DESC, id DESC);
