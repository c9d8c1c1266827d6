-- Whether listening overlapping [$3, $4) arrived after the rollups' last run: stream events
-- above id $1, or player changes above audience_dirty id $2 (widened by the play context $5).
SELECT EXISTS (
           SELECT 1 FROM stats_stream_event
           WHERE id > $1 AND time_start < $4 AND time_end > $3
       )
    OR EXISTS (
           SELECT 1 FROM audience_dirty
           WHERE id > $2 AND lo < $4 + $5 AND hi > $3 - $5
       ) AS pending
