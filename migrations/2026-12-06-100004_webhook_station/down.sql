ALTER TABLE webhook_endpoint DROP COLUMN station_id;
