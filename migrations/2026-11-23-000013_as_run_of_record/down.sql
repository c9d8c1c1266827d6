DROP INDEX onair_log_resume_of;
DROP INDEX onair_log_request_once;
ALTER TABLE onair_log DROP COLUMN push_id, DROP COLUMN position_s, DROP COLUMN resume_of, DROP COLUMN request_key;
ALTER TABLE diffusion_push DROP COLUMN path, DROP COLUMN state;
