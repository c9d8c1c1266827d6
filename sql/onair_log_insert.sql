-- Writes an as-run log entry unless the same one exists (see the unique indexes), and in the
-- same statement one webhook delivery per enabled endpoint that asked for its event (and its
-- station, for an endpoint of one station): the
-- transactional outbox, so no crash can separate an entry from its deliveries.
-- Events: a sound on air (on_air), a track of one (track), a diffusion started or cancelled.
WITH entry AS (
    INSERT INTO onair_log (station_id, type, date, source, comment, path, sound_id, track_id,
                           diffusion_id, parent_id, tags, date_from, request_key, resume_of,
                           position_s, push_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT DO NOTHING
    RETURNING id, station_id, type, track_id
), event AS (
    SELECT id, station_id,
           CASE WHEN type = 'on_air' AND track_id IS NULL THEN 'on_air'
                WHEN type = 'on_air' THEN 'track'
                WHEN type = 'start' THEN 'diffusion_start'
                WHEN type = 'cancel' THEN 'diffusion_cancel'
           END AS name
    FROM entry
), outbox AS (
    INSERT INTO webhook_delivery (endpoint_id, event, station_id, log_id)
    SELECT e.id, event.name, event.station_id, event.id
    FROM event JOIN webhook_endpoint e
         ON e.enabled AND event.name = ANY (e.events)
         AND (e.station_id IS NULL OR e.station_id = event.station_id)
    ORDER BY e.id
)
SELECT id FROM entry
