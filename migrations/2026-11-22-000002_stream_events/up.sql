-- One listener connection to an HLS or Icecast stream. Column names are those of the
-- openbroadcast stats app, so existing SQL keeps working against airlog's database.
CREATE TABLE stats_stream_event (
    id                bigserial   PRIMARY KEY,
    uuid              uuid        NOT NULL DEFAULT gen_random_uuid(),
    origin            text        NOT NULL CHECK (origin IN ('icecast', 'hls')),
    ip                inet        NOT NULL,
    method            text        NOT NULL,
    path              text        NOT NULL,
    status            integer     NOT NULL,
    bytes_sent        bigint      NOT NULL CHECK (bytes_sent >= 0),
    referer           text        NOT NULL DEFAULT '',
    user_agent        text        NOT NULL DEFAULT '',
    seconds_connected integer     NOT NULL CHECK (seconds_connected >= 0),
    time_start        timestamptz NOT NULL,
    time_end          timestamptz NOT NULL CHECK (time_end >= time_start),
    device_key        text        NOT NULL,
    geoip_city        text,
    geoip_region      text,
    geoip_country     text
);

-- The natural key: a re-posted event is the same listener connection, so it is stored once.
-- Long text goes through md5 to keep index entries small.
CREATE UNIQUE INDEX stats_stream_event_natural_key ON stats_stream_event
    (time_start, origin, ip, time_end, bytes_sent, md5(path), md5(user_agent));

-- Keyset paging and exports walk (time_start, id); the Icecast log export walks time_end.
CREATE INDEX stats_stream_event_time_start_id ON stats_stream_event (time_start, id);
CREATE INDEX stats_stream_event_time_end_id ON stats_stream_event (time_end, id);
CREATE UNIQUE INDEX stats_stream_event_uuid ON stats_stream_event (uuid);
