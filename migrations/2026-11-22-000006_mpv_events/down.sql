DROP TABLE mpv_event;
