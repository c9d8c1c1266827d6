-- The local days (in zone $1) that `playing` player events overlap, widened by the play
-- context ($2) either side: what a rebuild of the rollups computes.
SELECT DISTINCT d::date AS day
FROM stats_player_event p
CROSS JOIN LATERAL generate_series(
    date_trunc('day', (p.time - $2) AT TIME ZONE $1),
    date_trunc('day', (coalesce(p.time_end, p.time) + $2) AT TIME ZONE $1),
    interval '1 day'
) AS d
WHERE p.state = 'playing'
ORDER BY 1
