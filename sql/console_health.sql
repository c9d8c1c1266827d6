-- One line per job: its latest run, its latest success and failures in the last day.
SELECT name,
       max(started_at) AS last_run,
       max(finished_at) FILTER (WHERE error IS NULL AND finished_at IS NOT NULL) AS last_success,
       count(*) FILTER (WHERE error IS NOT NULL AND started_at > now() - interval '1 day') AS failures_24h,
       (array_agg(error ORDER BY started_at DESC))[1] AS last_error
FROM job_run
GROUP BY name
ORDER BY name
