-- An as-run log of record (issue 13): pushes marked and tracked until Liquidsoap confirms
-- them, plays keyed by Liquidsoap's own request, and resumed sounds logged as such.

-- A push is written before it is sent; its id travels with the request (the `airlog_push`
-- annotation), so a push whose answer was lost is found in Liquidsoap, never sent twice.
--   sending:  written, command not answered yet     answered: Liquidsoap answered with `rid`
--   unknown:  no answer (timeout, closed)           found:    seen in Liquidsoap afterwards
--   unsent:   the connection failed before sending  lost:     Liquidsoap restarted, or never
--                                                             showed it within the grace time
ALTER TABLE diffusion_push
    ADD COLUMN state text NOT NULL DEFAULT 'answered'
        CHECK (state IN ('sending', 'answered', 'unknown', 'found', 'unsent', 'lost')),
    ADD COLUMN path text;

-- `request_key` names the Liquidsoap request a play came from (rid@on-air time): the same
-- play seen twice (report, poll, history after a restart) is one entry whatever its date.
-- A sound resumed after an interruption gets an entry of its own pointing at the play it
-- resumes (`resume_of`), starting `position_s` seconds into the sound.
ALTER TABLE onair_log
    ADD COLUMN request_key text,
    ADD COLUMN resume_of bigint REFERENCES onair_log ON DELETE CASCADE,
    ADD COLUMN position_s double precision NOT NULL DEFAULT 0 CHECK (position_s >= 0),
    ADD COLUMN push_id bigint;
CREATE UNIQUE INDEX onair_log_request_once ON onair_log (station_id, request_key)
    WHERE type = 'on_air' AND track_id IS NULL AND resume_of IS NULL AND request_key IS NOT NULL;
CREATE INDEX onair_log_resume_of ON onair_log (resume_of) WHERE resume_of IS NOT NULL;
