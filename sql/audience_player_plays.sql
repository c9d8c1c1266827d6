-- The closed `playing` events that overlap [$2, $3) on a player source of station $1 (any
-- station when $1 is null). Open events count once the closing jobs have ended them.
SELECT st.name AS station, p.user_identity, p.device_key, p.listener_key, p.source,
       p.time AS time_start, p.time_end
FROM stats_player_event p
JOIN station_stream s ON s.kind = 'player' AND s.pattern = p.source
JOIN station st ON st.id = s.station_id
WHERE p.state = 'playing'
  AND p.time_end IS NOT NULL
  -- Started within a day before the period, or longer than a day (stats_player_event_long).
  AND ((p.time >= $2::timestamptz - interval '1 day' AND p.time < $3)
       OR (p.time_end - p.time > interval '1 day' AND p.time_end > $2))
  AND p.time_end > $2
  AND p.time < $3
  AND ($1::bigint IS NULL OR s.station_id = $1)
