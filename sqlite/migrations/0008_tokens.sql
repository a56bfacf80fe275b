-- 0008_tokens: every credential Herald issues (API keys, app-portal
-- tokens, console and portal sessions), by the SHA-256 of its secret: the
-- secret itself is never stored. kind is herald.TokenKind; app_id is NULL
-- for admin scope; parent is the token a session was opened with (NULL for
-- a session of the bootstrap admin token); session_id is the caller's
-- label of a portal token, NULL when unset; capabilities are the Svix
-- app-portal capabilities the token holds, comma-separated, NULL for no
-- limit (herald.Token.Capabilities). Times are unix microseconds;
-- last_used_at and revoked_at are NULL until set.
-- An application's tokens go with it, and a token's sessions with the
-- token (ON DELETE CASCADE), whoever deletes it: the API or the sweep.
CREATE TABLE token (
    id           TEXT    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    hash         BLOB    NOT NULL,
    name         TEXT    NOT NULL,
    app_id       TEXT    REFERENCES application (id) ON DELETE CASCADE,
    read_only    INTEGER NOT NULL,
    parent       TEXT    REFERENCES token (id) ON DELETE CASCADE,
    session_id   TEXT,
    capabilities TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

-- Every authenticated request finds its token here.
CREATE UNIQUE INDEX token_hash ON token (hash);
-- An application's tokens by ID: its list, expire-all; also serves the
-- application cascade.
CREATE INDEX token_app ON token (app_id, id);
-- The tokens of one kind by ID (the list of API keys among many sessions).
CREATE INDEX token_kind ON token (kind, id);
-- A token's sessions: revocation, expire-all and the cascade.
CREATE INDEX token_parent ON token (parent);
-- The sweep finds expired tokens here and revoked ones in the partial
-- index, which holds only those.
CREATE INDEX token_expires ON token (expires_at);
CREATE INDEX token_revoked ON token (revoked_at) WHERE revoked_at IS NOT NULL;
