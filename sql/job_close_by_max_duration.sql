-- Job close-by-max-duration: an open event with no successor is closed once its bound has
-- passed: a `playing` event with a known max_duration at time + max_duration, any other at
-- time + the configured cap, so nothing stays open forever. closed_by records which rule it was.
-- $1, $2: window of event times; $3: now; $4: the cap in seconds.
UPDATE stats_player_event AS e
SET time_end = e.time + b.bound,
    calculated_duration_s = round(extract(epoch FROM b.bound), 3),
    closed_by = b.rule
FROM (
    SELECT o.id,
           CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                THEN o.max_duration ELSE make_interval(secs => $4) END AS bound,
           CASE WHEN o.state = 'playing' AND o.max_duration >= interval '1 second'
                THEN 'max_duration' ELSE 'cap' END AS rule
    FROM stats_player_event AS o
    WHERE o.time_end IS NULL AND o.time >= $1 AND o.time < $2
      AND NOT EXISTS (
          SELECT 1 FROM stats_player_event AS x
          WHERE x.user_identity = o.user_identity AND x.device_key = o.device_key
            AND x.time >= o.time AND (x.time > o.time OR x.id > o.id)
      )
) AS b
WHERE e.id = b.id AND e.time + b.bound < $3
