-- Sessions, step 3 of 3: recompute from each cut on, with the rules of the replaced system's
-- session query (it still runs verbatim against this database and agrees wherever its order is
-- determined): `playing` events of one (user_identity, device_key) in the total order (time,
-- obj_key, state), which is unique per listener and does not depend on arrival, so events at
-- the same instant give the same sessions in every run; a gap over $1 seconds between an event
-- and the previous one's end starts a new session; sessions with more than $2 seconds played
-- are kept.
-- Events are read per listener from its cut on (a lateral index range scan), so the cost
-- follows the new data, not the history.
WITH ordered_events AS (
    SELECT e.*,
           LAG(e.time_end) OVER (PARTITION BY e.user_identity, e.device_key
                                 ORDER BY e.time, e.obj_key, e.state) AS prev_time_end
    FROM session_work AS w
    CROSS JOIN LATERAL (
        SELECT x.*
        FROM stats_player_event AS x
        WHERE x.user_identity = w.user_identity AND x.device_key = w.device_key
          AND x.time >= coalesce(w.cut, '-infinity') AND x.state = 'playing'
    ) AS e
),
events AS (
    SELECT *,
           SUM(CASE WHEN EXTRACT(EPOCH FROM (time - prev_time_end)) > $1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY user_identity, device_key ORDER BY time, obj_key, state) AS group_id
    FROM ordered_events
)
INSERT INTO stats_player_session
    (time_start, time_end, duration_s, duration_playing_s, duration_playing_live_s,
     duration_playing_ondemand_s, duration_playing_news_s, user_identity, device_key, remote_addr)
SELECT MIN(time),
       MAX(time_end),
       EXTRACT(EPOCH FROM (MAX(time_end) - MIN(time))),
       SUM(calculated_duration_s),
       coalesce(SUM(CASE WHEN source = 'live' THEN calculated_duration_s ELSE 0 END), 0),
       coalesce(SUM(CASE WHEN source = 'on-demand' THEN calculated_duration_s ELSE 0 END), 0),
       coalesce(SUM(CASE WHEN source = 'news' THEN calculated_duration_s ELSE 0 END), 0),
       user_identity,
       device_key,
       convert_from(decode(split_part(device_key, '-', 1), 'base64'), 'UTF8')
FROM events
GROUP BY user_identity, device_key, group_id
HAVING SUM(calculated_duration_s) > $2
