-- Sessions, step 2 of 3: drop the stored sessions from each cut on. The lateral join makes it
-- an index range scan per listener, so the cost follows the listeners, not the history.
DELETE FROM stats_player_session AS s
USING (
    SELECT x.id
    FROM session_work AS w
    CROSS JOIN LATERAL (
        SELECT s2.id FROM stats_player_session AS s2
        WHERE s2.user_identity = w.user_identity AND s2.device_key = w.device_key
          AND s2.time_start >= coalesce(w.cut, '-infinity')
    ) AS x
) AS gone
WHERE s.id = gone.id
