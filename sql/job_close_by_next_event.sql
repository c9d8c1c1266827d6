-- Job close-by-next-event: an open event ends where the next event of the same listener
-- (user_identity, device_key) begins. A `playing` event ends no later than time + max_duration
-- (durations under a second are treated as unknown, as the replaced system's data had zeros).
-- $1, $2: the window of event times to look at; only events that change are written.
UPDATE stats_player_event AS e
SET time_end = c.new_end,
    calculated_duration_s = round(extract(epoch FROM c.new_end - e.time), 3),
    closed_by = c.rule
FROM (
    SELECT o.id,
           CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                     AND o.time + o.max_duration < n.time
                THEN o.time + o.max_duration ELSE n.time END AS new_end,
           CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                     AND o.time + o.max_duration < n.time
                THEN 'max_duration' ELSE 'next' END AS rule
    FROM stats_player_event AS o
    CROSS JOIN LATERAL (
        SELECT x.time
        FROM stats_player_event AS x
        WHERE x.user_identity = o.user_identity AND x.device_key = o.device_key
          AND x.time >= o.time AND (x.time > o.time OR x.id > o.id)
        -- Only the time is needed, so ties need no order: the index hands rows in time order.
        ORDER BY x.time
        LIMIT 1
    ) AS n
    WHERE o.time_end IS NULL AND o.time >= $1 AND o.time < $2
) AS c
WHERE e.id = c.id
