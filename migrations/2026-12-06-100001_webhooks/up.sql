-- Outgoing webhooks (issue 18): endpoints, and a transactional outbox of deliveries. A
-- delivery row is written by the same statement that writes the as-run log entry it reports
-- (sql/onair_log_insert.sql), so a crash between the entry and its delivery cannot lose it.

CREATE TABLE webhook_endpoint (
    id                   bigserial   PRIMARY KEY,
    url                  text        NOT NULL CHECK (url <> ''),
    -- The events it receives: on_air, track, diffusion_start, diffusion_cancel,
    -- station_offline, station_online (checked by the API).
    events               text[]      NOT NULL,
    preset               text        NOT NULL DEFAULT 'generic'
                         CHECK (preset IN ('generic', 'discord', 'tunein', 'mastodon')),
    -- Signs every body (HMAC-SHA256); the Mastodon preset sends it as the access token.
    secret               text        NOT NULL,
    enabled              boolean     NOT NULL DEFAULT true,
    state                text        NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'failing')),
    consecutive_failures integer     NOT NULL DEFAULT 0,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoint_events ON webhook_endpoint USING gin (events) WHERE enabled;

-- One row per event and endpoint. An endpoint's pending rows go out in id order: the oldest
-- blocks the later ones until it is delivered, coalesced or given up.
--   pending:   to send (again) at next_attempt_at    delivered: a 2xx came back
--   coalesced: replaced by the later state in coalesced_into (presets that show "now")
--   failed:    given up after webhooks.give_up_after_s; can be redelivered by hand
CREATE TABLE webhook_delivery (
    id               bigserial   PRIMARY KEY,
    uuid             uuid        NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    endpoint_id      bigint      NOT NULL REFERENCES webhook_endpoint ON DELETE CASCADE,
    event            text        NOT NULL,
    station_id       bigint      REFERENCES station ON DELETE CASCADE,
    -- The entry reported (the body is made from it when sent), or the body of an event that
    -- has no entry (station offline/online, a test).
    log_id           bigint      REFERENCES onair_log ON DELETE CASCADE,
    payload          jsonb,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'coalesced', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    response_status  integer,
    latency_ms       integer,
    response_excerpt text,
    last_error       text,
    coalesced_into   bigint      REFERENCES webhook_delivery ON DELETE SET NULL,
    redelivery_of    bigint      REFERENCES webhook_delivery ON DELETE SET NULL,
    CHECK (log_id IS NOT NULL OR payload IS NOT NULL)
);
CREATE INDEX webhook_delivery_pending ON webhook_delivery (endpoint_id, id) WHERE status = 'pending';
CREATE INDEX webhook_delivery_endpoint ON webhook_delivery (endpoint_id, id DESC);
CREATE INDEX webhook_delivery_log ON webhook_delivery (log_id) WHERE log_id IS NOT NULL;
