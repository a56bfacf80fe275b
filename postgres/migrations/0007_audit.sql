-- 0007_audit: the audit log, one row per change made through the API,
-- the console, the portal or the CLI, written in the transaction of the
-- change (herald.AuditRecord). It holds identifiers only, never a payload,
-- a secret or a header value. app_id, resource_id and token_id name rows
-- that may be gone since: no foreign keys, the record outlives them.
-- The ID sorts by time (a KSUID).
CREATE TABLE audit_log (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    token_id        text COLLATE "C" NOT NULL,
    token_kind      text        NOT NULL,
    token_name      text        NOT NULL,
    parent_token_id text COLLATE "C" NOT NULL,
    method          text        NOT NULL,
    route           text        NOT NULL,
    action          text        NOT NULL,
    resource_type   text        NOT NULL,
    resource_id     text COLLATE "C" NOT NULL,
    app_id          text COLLATE "C" NOT NULL,
    request_id      text        NOT NULL,
    client_addr     text        NOT NULL
);

-- The filters of the listing, newest first within each.
CREATE INDEX audit_log_app ON audit_log (app_id, id);
CREATE INDEX audit_log_token ON audit_log (token_id, id);
