-- Stores a batch of checked player events, one array per column. max_duration comes from the
-- event, else from the catalogue. Events already stored (a retried request or a re-posted
-- backfill, see the unique indexes) are skipped; the row count is the number of new events.
INSERT INTO stats_player_event
    (time, time_end, state, max_duration, calculated_duration_s, obj_key, source,
     user_identity, device_key, client_ts, closed_by, listener_key)
SELECT i.time,
       i.time_end,
       i.state,
       coalesce(make_interval(secs => i.max_duration_s),
                (SELECT m.duration FROM catalog_media AS m WHERE m.obj_key = i.obj_key)),
       CASE WHEN i.time_end IS NOT NULL THEN trunc(extract(epoch FROM i.time_end - i.time), 3) END,
       i.obj_key,
       i.source,
       i.user_identity,
       i.device_key,
       i.client_ts,
       CASE WHEN i.time_end IS NOT NULL THEN 'client' END,
       i.listener_key
FROM unnest($1::timestamptz[], $2::timestamptz[], $3::text[], $4::float8[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::timestamptz[], $10::text[])
     AS i(time, time_end, state, max_duration_s, obj_key, source, user_identity, device_key, client_ts,
          listener_key)
ON CONFLICT DO NOTHING
