-- What mpv played. Items keep an immutable id: a file renamed or retagged is found again by the
-- hash of its content; streams (URLs) by their address.
CREATE TABLE media_item (
    id           bigserial   PRIMARY KEY,
    path         text        NOT NULL,
    content_hash text        UNIQUE,
    is_stream    boolean     NOT NULL DEFAULT false,
    title        text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX media_item_path_without_hash ON media_item (path) WHERE content_hash IS NULL;
CREATE INDEX media_item_path ON media_item (path);

-- One play. `source_key` makes imports and captures idempotent.
CREATE TABLE mpv_play (
    id               bigserial        PRIMARY KEY,
    item_id          bigint           NOT NULL REFERENCES media_item,
    source           text             NOT NULL CHECK (source IN ('import', 'live')),
    source_key       text             NOT NULL UNIQUE,
    instance         text             NOT NULL DEFAULT '',
    path             text             NOT NULL,
    is_stream        boolean          NOT NULL,
    start_time       timestamptz      NOT NULL,
    end_time         timestamptz      NOT NULL,
    pause_duration_s double precision NOT NULL DEFAULT 0,
    media_duration_s double precision,
    media_title      text,
    metadata         jsonb            NOT NULL DEFAULT '{}',
    actions          jsonb            NOT NULL DEFAULT '[]',
    end_reason       text,
    listened         boolean          NOT NULL,
    scrobbled        boolean          NOT NULL
);
CREATE INDEX mpv_play_start_id ON mpv_play (start_time, id);
CREATE INDEX mpv_play_item ON mpv_play (item_id, start_time DESC);
