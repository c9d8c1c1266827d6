DROP INDEX webhook_delivery_done;
DROP TABLE webhook_attempt;
ALTER TABLE webhook_delivery DROP COLUMN locked_until;
