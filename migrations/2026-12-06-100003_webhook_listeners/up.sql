-- How many of webhooks.listener_thresholds the listeners now reached at the last look, so the
-- `listeners` event is sent once per crossing, whichever airlog process looks, across restarts.
CREATE TABLE webhook_listener_level (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    level      integer     NOT NULL,
    listeners  bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
