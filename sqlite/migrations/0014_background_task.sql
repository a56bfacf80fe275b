-- 0014_background_task: durable background tasks (herald.Task): recover,
-- replay-missing, bulk-replay and expunge-all-contents. A task runs in
-- short slices; each slice's write transaction also saves cursor (where the
-- next slice starts, in the engine's own encoding) and done (rows changed
-- so far), so after a crash the task resumes where its last slice left
-- it. lease_owner/lease_expires_at name the runner holding the task.
-- app_id and endpoint_id have no foreign keys: a task's record outlives
-- them, as the audit log's does. Times are unix microseconds.
CREATE TABLE background_task (
    id               TEXT    NOT NULL PRIMARY KEY,
    app_id           TEXT    NOT NULL,
    endpoint_id      TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    filter           TEXT    NOT NULL,
    cursor           TEXT    NOT NULL,
    done             INTEGER NOT NULL,
    error            TEXT    NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- The runner's scan: running tasks, oldest first.
CREATE INDEX background_task_running ON background_task (id) WHERE status = 'running';
