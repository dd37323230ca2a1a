-- Requests to apply (or roll back) pending migrations of a managed
-- database, bound to the files' checksums when requested: an approval is
-- for exactly those files, and a changed file voids it.
CREATE TABLE migration_requests (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    database_name TEXT   NOT NULL,
    action        TEXT   NOT NULL CHECK (action IN ('apply', 'rollback')),
    -- JSON: [{"version": "2", "checksum": "<sha256>"}]
    files         TEXT   NOT NULL,
    requested_by  TEXT   NOT NULL,
    requested_at  BIGINT NOT NULL,
    state         TEXT   NOT NULL CHECK (state IN ('open', 'rejected', 'void', 'running', 'done', 'failed')),
    job_id        BIGINT,
    error         TEXT
);
CREATE INDEX migration_requests_database ON migration_requests (database_name, id);

-- One decision per approver per request.
CREATE TABLE migration_decisions (
    request_id BIGINT NOT NULL REFERENCES migration_requests (id),
    approver   TEXT   NOT NULL,
    approve    BOOLEAN NOT NULL,
    comment    TEXT   NOT NULL DEFAULT '',
    decided_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

-- Approvals a request needs before it may run (0 for development databases).
ALTER TABLE managed_databases ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 1;
