-- Sessions, step 1 of 3: take the listeners whose events changed since the last run, and for
-- each the point to recompute from: the start of its last stored session that began before the
-- earliest change (an unchanged group start), or its whole history when there is none.
WITH dirty AS (
    DELETE FROM stats_player_dirty RETURNING user_identity, device_key, since
)
INSERT INTO session_work (user_identity, device_key, cut)
SELECT d.user_identity, d.device_key,
       (SELECT max(s.time_start) FROM stats_player_session AS s
         WHERE s.user_identity = d.user_identity AND s.device_key = d.device_key
           AND s.time_start < d.since)
FROM dirty AS d
