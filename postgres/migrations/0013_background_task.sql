-- 0013_background_task: durable background tasks (herald.Task): recover,
-- replay-missing, bulk-replay and expunge-all-contents. A task runs in
-- short slices; each slice's transaction also saves cursor (where the next
-- slice starts) and done (rows changed so far), so after a crash the task
-- resumes where its last slice left it, on any node: a node claims a
-- running task whose lease expired with FOR UPDATE SKIP LOCKED. app_id and
-- endpoint_id have no foreign keys: a task's record outlives them, as the
-- audit log's does.
CREATE TABLE background_task (
    id               text PRIMARY KEY,
    app_id           text NOT NULL,
    endpoint_id      text NOT NULL,
    kind             text NOT NULL,
    status           text NOT NULL,
    filter           jsonb NOT NULL,
    cursor           text NOT NULL,
    done             bigint NOT NULL,
    error            text NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- The runner's scan: running tasks, oldest first.
CREATE INDEX background_task_running ON background_task (id) WHERE status = 'running';
