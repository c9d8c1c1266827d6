-- Stores a batch of checked stream events in one statement; one array per column.
-- Events already stored (same natural key, see the migration) are skipped, so a re-posted
-- batch adds nothing. The affected row count is the number of new events. The conflict target
-- names the natural-key index: without one, PostgreSQL probes every unique index for every
-- row (the uuid one too), which was a third of its work.
INSERT INTO stats_stream_event
    (origin, ip, method, path, status, bytes_sent, referer, user_agent,
     seconds_connected, time_start, time_end, device_key)
SELECT *
FROM unnest($1::text[], $2::text[]::inet[], $3::text[], $4::text[], $5::int4[], $6::int8[],
            $7::text[], $8::text[], $9::int4[], $10::timestamptz[], $11::timestamptz[],
            $12::text[])
ON CONFLICT (time_start, origin, ip, time_end, bytes_sent, md5(path), md5(user_agent)) DO NOTHING
