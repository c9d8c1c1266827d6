ALTER TABLE webhook_delivery DROP COLUMN locked_until;
