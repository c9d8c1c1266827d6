-- Sessions, step 2 of 3: drop the stored sessions from each cut on.
DELETE FROM stats_player_session AS s
USING session_work AS w
WHERE s.user_identity = w.user_identity AND s.device_key = w.device_key
  AND (w.cut IS NULL OR s.time_start >= w.cut)
