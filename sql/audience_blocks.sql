-- The stored blocks of station $1 of kind $2 starting at one of $3 (all within [$6, $7]), for
-- the groups $4 ('' is the whole station) or, when $5 is not null, every group starting with
-- $5. The range bounds the index scan whatever the planner believes of the array.
-- Without $8 the listener sets are left out (a block read for its figures alone).
SELECT kind, start_at, grp, end_at, listening_us, aqh_persons, sessions, peak, peak_at, cume,
       CASE WHEN $8 THEN qualified ELSE ''::bytea END AS qualified,
       CASE WHEN $8 THEN partial ELSE ''::bytea END AS partial,
       excluded_robot, excluded_relay, excluded_too_short
FROM audience_block
WHERE station_id = $1
  AND kind = $2
  AND start_at >= $6 AND start_at <= $7
  AND start_at = ANY($3)
  AND (grp = ANY($4) OR ($5::text IS NOT NULL AND starts_with(grp, $5)))
