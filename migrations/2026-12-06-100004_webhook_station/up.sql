-- An endpoint may be for one station only (a station's own Discord channel); none: every
-- station's events.
ALTER TABLE webhook_endpoint ADD COLUMN station_id bigint REFERENCES station ON DELETE CASCADE;
