-- Job fix-durations: an end later than the next event's start (the next event arrived after
-- the end was set) is pulled back to it, and calculated_duration_s is set from
-- time_end - time wherever it is missing or stale. Only rows that change are written.
-- $1, $2: window of event times.
UPDATE stats_player_event AS e
SET time_end = f.new_end,
    calculated_duration_s = f.seconds,
    closed_by = CASE WHEN f.new_end < e.time_end THEN 'fix' ELSE e.closed_by END
FROM (
    SELECT o.id,
           least(o.time_end, n.time) AS new_end,
           round(extract(epoch FROM least(o.time_end, n.time) - o.time), 3) AS seconds
    FROM stats_player_event AS o
    LEFT JOIN LATERAL (
        SELECT x.time
        FROM stats_player_event AS x
        WHERE x.user_identity = o.user_identity AND x.device_key = o.device_key
          AND x.time >= o.time AND (x.time > o.time OR x.id > o.id)
          AND x.time < o.time_end
        -- Only the time is needed, so ties need no order: the index hands rows in time order.
        ORDER BY x.time
        LIMIT 1
    ) AS n ON true
    WHERE o.time_end IS NOT NULL AND o.time >= $1 AND o.time < $2
) AS f
WHERE e.id = f.id
  AND (f.new_end <> e.time_end OR e.calculated_duration_s IS DISTINCT FROM f.seconds)
