-- Job close-by-next-event: an open event whose listener (user_identity, device_key) has a later
-- event ends at the earliest of: that next event's time, time + max_duration (a `playing` event
-- of known length; durations under a second count as unknown, the replaced system's data had
-- zeros), time + the open-event cap. The cap keeps a live stream left playing from lasting until
-- the listener's next visit days later, so the end never depends on when the data arrived.
-- "Next" follows the total order (time, obj_key, state): unique per listener and independent
-- of insertion order, so events at the same instant are ordered the same way on every load.
-- Open events of any age are looked at (the partial index on open events serves that).
-- $1: window end (events at or after it are left); $2: the cap in seconds.
UPDATE stats_player_event AS e
SET time_end = c.new_end,
    calculated_duration_s = trunc(extract(epoch FROM c.new_end - e.time), 3),
    closed_by = CASE c.new_end WHEN c.next_time THEN 'next'
                               WHEN c.media_end THEN 'max_duration'
                               ELSE 'cap' END
FROM (
    SELECT o.id, n.time AS next_time, b.media_end,
           least(n.time, b.media_end, o.time + make_interval(secs => $2)) AS new_end
    FROM stats_player_event AS o
    CROSS JOIN LATERAL (
        SELECT CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                    THEN o.time + o.max_duration END AS media_end
    ) AS b
    CROSS JOIN LATERAL (
        SELECT x.time
        FROM stats_player_event AS x
        WHERE x.user_identity = o.user_identity AND x.device_key = o.device_key
          AND (x.time, x.obj_key, x.state) > (o.time, o.obj_key, o.state)
        ORDER BY x.time, x.obj_key, x.state
        LIMIT 1
    ) AS n
    WHERE o.time_end IS NULL AND o.time < $1
) AS c
WHERE e.id = c.id
