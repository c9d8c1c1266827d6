DROP TABLE stats_stream_event;
