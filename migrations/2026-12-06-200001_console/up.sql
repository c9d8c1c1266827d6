-- Operator console sessions: the browser holds a random id in an HttpOnly cookie; only its
-- SHA-256 is stored, so a copy of the table signs nobody in. A session signed in with an API
-- token follows that token (revoking it ends the session); one from a trusted proxy's identity
-- header carries its own scopes.
CREATE TABLE console_session (
    id_hash    text        PRIMARY KEY CHECK (length(id_hash) = 64),
    token_id   bigint      REFERENCES api_token (id) ON DELETE CASCADE,
    identity   text        NOT NULL CHECK (identity <> ''),
    scopes     text[]      NOT NULL CHECK (scopes <@ ARRAY['ingest', 'read', 'admin']),
    -- The form token every POST of this session must carry (CSRF).
    csrf       text        NOT NULL CHECK (length(csrf) = 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX console_session_expires ON console_session (expires_at);
