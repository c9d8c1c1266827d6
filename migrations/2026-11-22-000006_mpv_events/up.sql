-- mpv events as they arrive from each instance (append-only); plays are rebuilt from them.
CREATE TABLE mpv_event (
    id       bigserial   PRIMARY KEY,
    instance text        NOT NULL,
    time     timestamptz NOT NULL,
    event    text        NOT NULL,
    data     jsonb
);
CREATE INDEX mpv_event_instance_time ON mpv_event (instance, time, id);
