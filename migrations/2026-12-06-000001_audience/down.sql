ALTER TABLE stats_player_event DROP COLUMN listener_key;
DROP TABLE station_daypart;
DROP TABLE station_stream;
