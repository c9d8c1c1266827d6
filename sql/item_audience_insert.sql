-- Stores the audience of items of station $1 (one array element per item).
INSERT INTO item_audience (log_id, station_id, start_at, end_at, listeners_at_start,
                           performances, listening_us, rules)
SELECT i.log_id, $1, i.start_at, i.end_at, i.at_start, i.performances, i.listening_us, $8
FROM unnest($2::bigint[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::int[],
            $7::bigint[]) AS i(log_id, start_at, end_at, at_start, performances, listening_us)
