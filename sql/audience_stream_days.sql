-- The first and last local days (in zone $2) of the stream events with an id above $1: the
-- days the audience job recomputes after new listening arrived (of any station: a superset).
-- Pairs, not days, so the planner sees as many rows as events (no parallel plan for a few).
SELECT DISTINCT (e.time_start AT TIME ZONE $2)::date AS first_day,
       (greatest(e.time_start, e.time_end - interval '1 microsecond') AT TIME ZONE $2)::date AS last_day
FROM stats_stream_event e
WHERE e.id > $1
