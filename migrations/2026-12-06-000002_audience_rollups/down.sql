DROP TRIGGER audience_player_deleted ON stats_player_event;
DROP TRIGGER audience_player_updated_old ON stats_player_event;
DROP TRIGGER audience_player_updated ON stats_player_event;
DROP TRIGGER audience_player_inserted ON stats_player_event;
DROP FUNCTION audience_mark_dirty();
DROP TABLE audience_dirty;
DROP TABLE audience_rollup_state;
DROP TABLE audience_block;
DROP TABLE audience_listener;
