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
