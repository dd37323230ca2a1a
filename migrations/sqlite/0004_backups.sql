-- The backup catalog. Only a finished, checksummed backup is 'good'; a
-- failed, cancelled or interrupted one never is, and its file is removed.
CREATE TABLE backups (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    database_name  TEXT   NOT NULL,
    job_id         BIGINT,
    state          TEXT   NOT NULL CHECK (state IN ('running', 'good', 'failed', 'cancelled', 'interrupted', 'pruned')),
    engine         TEXT   NOT NULL,
    format         TEXT   NOT NULL,
    compression    TEXT   NOT NULL,
    location       TEXT   NOT NULL DEFAULT '',
    bytes          BIGINT,
    sha256         TEXT,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    duration_ms    BIGINT,
    tool_version   TEXT   NOT NULL DEFAULT '',
    server_version TEXT   NOT NULL DEFAULT '',
    table_counts   TEXT   NOT NULL DEFAULT '{}',
    error          TEXT,
    verified_at    BIGINT,
    verify_ok      BOOLEAN,
    verify_error   TEXT,
    restore_ms     BIGINT
);
CREATE INDEX backups_database ON backups (database_name, id);
CREATE INDEX backups_state ON backups (state);

-- Schedules (5-field cron) and retention, per registered database.
ALTER TABLE managed_databases ADD COLUMN backup_schedule TEXT;
ALTER TABLE managed_databases ADD COLUMN verify_schedule TEXT;
ALTER TABLE managed_databases ADD COLUMN retention TEXT;
