DROP TABLE job_run;
DROP TABLE stats_heartbeat;
DROP TABLE catalog_media;
DROP TABLE stats_player_session_params;
DROP TABLE stats_player_session;
DROP TABLE stats_player_event;
DROP FUNCTION stats_player_mark_dirty();
DROP TABLE stats_player_dirty;
