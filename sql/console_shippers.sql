-- What log shippers last sent, per origin: the newest connection end seen and how many events
-- ended in the last hour. Stream events carry no arrival time, so the newest end stands for it.
SELECT origin, max(time_end) AS last_event, count(*) FILTER (WHERE time_end > now() - interval '1 hour') AS last_hour
FROM stats_stream_event
GROUP BY origin
ORDER BY origin
