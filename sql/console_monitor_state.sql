-- Whether some airlog process holds a station's monitor lock (an advisory lock on bigint key $1,
-- which pg_locks shows split in two 32-bit halves), and when the station last logged anything.
SELECT EXISTS (
           SELECT 1 FROM pg_locks
           WHERE locktype = 'advisory' AND granted AND objsubid = 1
             AND ((classid::bigint << 32) | objid::bigint) = $1
       ) AS monitored,
       (SELECT max(date) FROM onair_log WHERE station_id = $2) AS last_entry
