-- A delivery being sent is leased to the process sending it, so two airlog processes on one
-- database never send the same delivery at once (nor coalesce it meanwhile); a lease left by a
-- process that died runs out, and the delivery is sent again.
ALTER TABLE webhook_delivery ADD COLUMN locked_until timestamptz;
