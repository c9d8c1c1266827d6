-- Ratings and tags given to items, by whom (the token), at which position of the play.
CREATE TABLE item_rating (
    id         bigserial        PRIMARY KEY,
    item_id    bigint           NOT NULL REFERENCES media_item,
    rating     smallint         CHECK (rating BETWEEN 1 AND 5),
    tag        text             CHECK (tag <> ''),
    position_s double precision,
    instance   text             NOT NULL DEFAULT '',
    token_id   bigint           NOT NULL REFERENCES api_token,
    created_at timestamptz      NOT NULL DEFAULT now(),
    CHECK (rating IS NOT NULL OR tag IS NOT NULL)
);
CREATE INDEX item_rating_item ON item_rating (item_id, created_at DESC);
CREATE INDEX item_rating_token ON item_rating (token_id, created_at DESC, id DESC);
