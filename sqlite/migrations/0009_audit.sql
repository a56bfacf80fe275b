-- 0009_audit: the audit log, one row per change made through the API,
-- the console, the portal or the CLI, written in the transaction of the
-- change (herald.AuditRecord). It holds identifiers only, never a payload,
-- a secret or a header value. app_id, resource_id and token_id name rows
-- that may be gone since: no foreign keys, the record outlives them.
-- Times are unix microseconds; the ID sorts by time (a KSUID).
CREATE TABLE audit_log (
    id              TEXT    NOT NULL PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    token_id        TEXT    NOT NULL,
    token_kind      TEXT    NOT NULL,
    token_name      TEXT    NOT NULL,
    parent_token_id TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    route           TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    resource_type   TEXT    NOT NULL,
    resource_id     TEXT    NOT NULL,
    app_id          TEXT    NOT NULL,
    request_id      TEXT    NOT NULL,
    client_addr     TEXT    NOT NULL
) STRICT;

-- The filters of the listing, newest first within each.
CREATE INDEX audit_log_app ON audit_log (app_id, id);
CREATE INDEX audit_log_token ON audit_log (token_id, id);
