-- Long work (maintenance, backups, restores, migrations) as jobs. A running
-- job's runner beats `heartbeat_at`; a job whose heartbeat stops (the panel
-- died under it) is marked interrupted, never succeeded.
CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT   NOT NULL,
    database_name    TEXT,
    target           TEXT   NOT NULL DEFAULT '',
    requested_by     TEXT   NOT NULL,
    state            TEXT   NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    progress         DOUBLE PRECISION,
    phase            TEXT   NOT NULL DEFAULT '',
    error            TEXT,
    log              TEXT   NOT NULL DEFAULT '',
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    heartbeat_at     BIGINT
);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_database ON jobs (database_name, id);
