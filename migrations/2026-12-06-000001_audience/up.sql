-- Audience figures: what a station broadcasts on, its dayparts, and the listener key of player
-- events (the key their browser's stream connections have too).

-- A station's streams: Icecast mounts (the path before any query), HLS path prefixes (the
-- longest matching prefix wins) and player sources (live, on-demand, news). A stream belongs to
-- one station.
CREATE TABLE station_stream (
    id          bigserial PRIMARY KEY,
    station_id  bigint    NOT NULL REFERENCES station (id) ON DELETE CASCADE,
    kind        text      NOT NULL CHECK (kind IN ('icecast', 'hls', 'player')),
    pattern     text      NOT NULL CHECK (pattern <> '' AND length(pattern) <= 512),
    UNIQUE (kind, pattern)
);
CREATE INDEX station_stream_station ON station_stream (station_id);

-- Named dayparts of a station, e.g. morning = "mon-fri 06:00-10:00" (local wall clock).
CREATE TABLE station_daypart (
    station_id  bigint NOT NULL REFERENCES station (id) ON DELETE CASCADE,
    name        text   NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    spec        text   NOT NULL CHECK (length(spec) <= 1000),
    PRIMARY KEY (station_id, name)
);

-- The browser's listener key (address, IPv6 cut to its /64, and a hash of the user agent
-- alone): the same key as its HLS or Icecast connections. Null for events stored before.
ALTER TABLE stats_player_event ADD COLUMN listener_key text;
