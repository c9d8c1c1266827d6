DROP TABLE mpv_play;
DROP TABLE media_item;
