-- Coalesces the backlog of an endpoint whose preset shows only the present: of the run of
-- now-playing deliveries (on_air, track) at the head of its queue, all but the latest are
-- marked `coalesced`, pointing at the latest, which is then sent. The run stops at the first
-- other event (a diffusion start, a station going offline), so order across kinds is kept.
WITH pending AS (
    SELECT id, event FROM webhook_delivery
    WHERE endpoint_id = $1 AND status = 'pending'
    ORDER BY id
    LIMIT 10000
), run AS (
    SELECT id FROM pending
    WHERE event IN ('on_air', 'track')
      AND id < coalesce((SELECT min(id) FROM pending WHERE event NOT IN ('on_air', 'track')),
                        9223372036854775807)
), latest AS (
    SELECT max(id) AS id FROM run
)
UPDATE webhook_delivery d
SET status = 'coalesced', coalesced_into = latest.id
FROM run, latest
WHERE d.id = run.id AND d.id < latest.id
