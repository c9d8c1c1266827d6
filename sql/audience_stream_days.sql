-- The local days (in zone $2) that stream events with an id above $1 overlap: what the
-- audience job recomputes after new listening arrived (of any station: a superset).
SELECT DISTINCT d::date AS day
FROM stats_stream_event e
CROSS JOIN LATERAL generate_series(
    date_trunc('day', e.time_start AT TIME ZONE $2),
    date_trunc('day', greatest(e.time_start, e.time_end - interval '1 microsecond') AT TIME ZONE $2),
    interval '1 day'
) AS d
WHERE e.id > $1
ORDER BY 1
