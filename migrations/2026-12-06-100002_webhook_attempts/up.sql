-- A delivery being sent is leased to the process sending it, so two airlog processes on one
-- database never send the same delivery at once (nor coalesce it meanwhile); a lease left by a
-- process that died runs out, and the delivery is sent again.
ALTER TABLE webhook_delivery ADD COLUMN locked_until timestamptz;

-- Every attempt of a delivery, for the history of one delivery (the delivery row keeps only
-- the last). Pruned with their deliveries (webhooks.keep_days).
CREATE TABLE webhook_attempt (
    id               bigserial   PRIMARY KEY,
    delivery_id      bigint      NOT NULL REFERENCES webhook_delivery ON DELETE CASCADE,
    at               timestamptz NOT NULL,
    response_status  integer,
    latency_ms       integer     NOT NULL,
    response_excerpt text,
    error            text
);
CREATE INDEX webhook_attempt_delivery ON webhook_attempt (delivery_id, id);
CREATE INDEX webhook_delivery_done ON webhook_delivery (created_at) WHERE status <> 'pending';
