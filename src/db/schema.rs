//! Table definitions for diesel, in step with `migrations/`.

diesel::table! {
    api_token (id) {
        id -> Int8,
        name -> Text,
        prefix -> Text,
        hash -> Text,
        scopes -> Array<Text>,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Stream events (listener connections).
    stats_stream_event (id) {
        id -> Int8,
        uuid -> Uuid,
        origin -> Text,
        ip -> Inet,
        method -> Text,
        path -> Text,
        status -> Int4,
        bytes_sent -> Int8,
        referer -> Text,
        user_agent -> Text,
        seconds_connected -> Int4,
        time_start -> Timestamptz,
        time_end -> Timestamptz,
        device_key -> Text,
        // geoip_city, geoip_region and geoip_country exist for compatibility; airlog does not
        // read them, and leaving them out keeps diesel within 16 columns.
    }
}

diesel::table! {
    /// The columns of `stats_player_event` that bulk loads (COPY) write; the full table is
    /// read and written with hand-written SQL in `sql/`.
    #[sql_name = "stats_player_event"]
    stats_player_event_copy (id) {
        id -> Int8,
        time -> Timestamptz,
        state -> Text,
        max_duration -> Nullable<Interval>,
        obj_key -> Text,
        source -> Text,
        user_identity -> Text,
        device_key -> Text,
    }
}
