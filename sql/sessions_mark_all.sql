-- Sessions: mark every listener for recomputation from the start of its history (used when
-- the gap or minimum changed, and by `airlog jobs run sessions --full`).
INSERT INTO stats_player_dirty (user_identity, device_key, since)
SELECT user_identity, device_key, min(time) FROM stats_player_event GROUP BY user_identity, device_key
ON CONFLICT (user_identity, device_key) DO UPDATE SET since = least(stats_player_dirty.since, excluded.since)
