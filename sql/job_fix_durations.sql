-- Job fix-durations: every closed event is brought to the closing rule, whatever closed it (a
-- client's time_end, an earlier pass that had not yet seen a late event): it ends at the
-- earliest of its end, the next event's time, time + max_duration (`playing`, known length) and
-- time + the cap. So no listener's events overlap, and the end is the same whichever order the
-- events arrived in. calculated_duration_s = end - time, cut to the millisecond (never rounded
-- up, so a session's summed playing time never exceeds its span). Only rows that change are
-- written. $1, $2: window of event times (the caller starts it one cap early: an event that a
-- new one can cut starts at most one cap before it); $3: the cap in seconds.
UPDATE stats_player_event AS e
SET time_end = f.new_end,
    calculated_duration_s = f.seconds,
    closed_by = CASE WHEN f.new_end = e.time_end THEN e.closed_by
                     WHEN f.new_end = f.next_time THEN 'fix'
                     WHEN f.new_end = f.media_end THEN 'max_duration'
                     ELSE 'cap' END
FROM (
    SELECT o.id, n.time AS next_time, b.media_end, c.new_end,
           trunc(extract(epoch FROM c.new_end - o.time), 3) AS seconds
    FROM stats_player_event AS o
    CROSS JOIN LATERAL (
        SELECT CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                    THEN o.time + o.max_duration END AS media_end
    ) AS b
    LEFT JOIN LATERAL (
        SELECT x.time
        FROM stats_player_event AS x
        WHERE x.user_identity = o.user_identity AND x.device_key = o.device_key
          AND (x.time, x.obj_key, x.state) > (o.time, o.obj_key, o.state)
          AND x.time < o.time_end
        ORDER BY x.time, x.obj_key, x.state
        LIMIT 1
    ) AS n ON true
    CROSS JOIN LATERAL (
        SELECT least(o.time_end, n.time, b.media_end, o.time + make_interval(secs => $3)) AS new_end
    ) AS c
    WHERE o.time_end IS NOT NULL AND o.time >= $1 AND o.time < $2
) AS f
WHERE e.id = f.id
  AND (f.new_end <> e.time_end OR e.calculated_duration_s IS DISTINCT FROM f.seconds)
