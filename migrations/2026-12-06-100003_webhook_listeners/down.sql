DROP TABLE webhook_listener_level;
