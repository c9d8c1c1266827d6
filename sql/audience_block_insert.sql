-- Stores audience blocks of station $1 (one array element per block).
INSERT INTO audience_block (station_id, kind, start_at, grp, end_at, listening_us, aqh_persons,
                            sessions, peak, peak_at, qualified, partial, excluded_robot,
                            excluded_relay, excluded_too_short, cume)
SELECT $1, b.*
FROM unnest($2::smallint[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::bigint[],
            $7::bigint[], $8::bigint[], $9::bigint[], $10::timestamptz[], $11::bytea[],
            $12::bytea[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[]) AS b
