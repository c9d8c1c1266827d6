-- Stores a batch of checked stream events in one statement; one array per column: the fast
-- path. Events already stored (same natural key, see the migration) are left out by an
-- anti-join on the natural-key index, and the rest are plain inserts: cheaper for PostgreSQL
-- than ON CONFLICT, whose speculative insertion costs a second index pass and a WAL record per
-- row. Two requests storing the same new event at the same moment (or one event twice in a
-- batch) make this fail with a unique violation; the caller then uses
-- stream_event_insert.sql, which settles it with ON CONFLICT. The row count is the number of
-- new events.
INSERT INTO stats_stream_event
    (origin, ip, method, path, status, bytes_sent, referer, user_agent,
     seconds_connected, time_start, time_end, device_key)
SELECT u.*
FROM unnest($1::text[], $2::text[]::inet[], $3::text[], $4::text[], $5::int4[], $6::int8[],
            $7::text[], $8::text[], $9::int4[], $10::timestamptz[], $11::timestamptz[],
            $12::text[])
     AS u(origin, ip, method, path, status, bytes_sent, referer, user_agent,
          seconds_connected, time_start, time_end, device_key)
WHERE NOT EXISTS (
    SELECT 1 FROM stats_stream_event AS s
    WHERE s.time_start = u.time_start AND s.origin = u.origin AND s.ip = u.ip
      AND s.time_end = u.time_end AND s.bytes_sent = u.bytes_sent
      AND md5(s.path) = md5(u.path) AND md5(s.user_agent) = md5(u.user_agent)
)
