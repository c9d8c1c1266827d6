-- API tokens: only a SHA-256 of each token is kept; the first 8 characters are kept in clear
-- so a presented token finds its row without scanning, and so operators can tell tokens apart.
CREATE TABLE api_token (
    id           bigserial PRIMARY KEY,
    name         text        NOT NULL CHECK (name <> ''),
    prefix       text        NOT NULL CHECK (length(prefix) = 8),
    hash         text        NOT NULL CHECK (length(hash) = 64),
    scopes       text[]      NOT NULL CHECK (cardinality(scopes) > 0
                                             AND scopes <@ ARRAY['ingest', 'read', 'admin']),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- A name can be reused once its token is revoked; revoked rows stay for the audit trail.
CREATE UNIQUE INDEX api_token_active_name ON api_token (name) WHERE revoked_at IS NULL;
CREATE INDEX api_token_active_prefix ON api_token (prefix) WHERE revoked_at IS NULL;
