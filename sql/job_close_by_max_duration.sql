-- Job close-by-max-duration: an open event with no successor is closed once its bound has
-- passed: time + max_duration for a `playing` event of known length, else time + the open-event
-- cap (whichever is earlier), so nothing stays open forever. Open events of any age are looked
-- at (the partial index on open events serves that): a pass that comes late, or after airlog was
-- down, closes them all. closed_by records which bound it was.
-- $1: window end; $2: now; $3: the cap in seconds.
UPDATE stats_player_event AS e
SET time_end = b.new_end,
    calculated_duration_s = trunc(extract(epoch FROM b.new_end - e.time), 3),
    closed_by = CASE b.new_end WHEN b.media_end THEN 'max_duration' ELSE 'cap' END
FROM (
    SELECT o.id, m.media_end,
           least(m.media_end, o.time + make_interval(secs => $3)) AS new_end
    FROM stats_player_event AS o
    CROSS JOIN LATERAL (
        SELECT CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                    THEN o.time + o.max_duration END AS media_end
    ) AS m
    WHERE o.time_end IS NULL AND o.time < $1
      AND NOT EXISTS (
          SELECT 1 FROM stats_player_event AS x
          WHERE x.user_identity = o.user_identity AND x.device_key = o.device_key
            AND (x.time, x.obj_key, x.state) > (o.time, o.obj_key, o.state)
      )
) AS b
WHERE e.id = b.id AND b.new_end < $2
