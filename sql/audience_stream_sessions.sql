-- The stream events that overlap [$2, $3) and belong to a stream of station $1 (any station when
-- $1 is null): each is one listening session, an Icecast connection or an HLS session the
-- shipper put together. An Icecast event matches a mount by its path before any query string;
-- an HLS event matches the longest path prefix of any station, and belongs to that station.
-- Failed requests (status 400 and above) listened to nothing.
SELECT host(e.ip) AS ip, e.user_agent, e.origin AS kind, m.pattern AS stream, m.station,
       e.time_start, e.time_end
FROM stats_stream_event e
CROSS JOIN LATERAL (
    SELECT s.pattern, st.name AS station, s.station_id
    FROM station_stream s
    JOIN station st ON st.id = s.station_id
    WHERE s.kind = e.origin
      AND CASE s.kind
            WHEN 'icecast' THEN split_part(e.path, '?', 1) = s.pattern
            ELSE starts_with(e.path, s.pattern)
          END
    ORDER BY length(s.pattern) DESC
    LIMIT 1
) m
-- Started within a day before the period (time_start index), or longer than a day (the
-- partial index stats_stream_event_long): the same rows, read from two small ranges.
WHERE ((e.time_start >= $2::timestamptz - interval '1 day' AND e.time_start < $3)
       OR (e.time_end - e.time_start > interval '1 day' AND e.time_end > $2))
  AND e.time_end > $2
  AND e.time_start < $3
  AND e.status < 400
  AND ($1::bigint IS NULL OR m.station_id = $1)
