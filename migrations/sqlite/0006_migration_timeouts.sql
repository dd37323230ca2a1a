-- How long a migration may wait for a lock, and run per statement, on this
-- database (milliseconds).
ALTER TABLE managed_databases ADD COLUMN lock_timeout_ms BIGINT NOT NULL DEFAULT 5000;
ALTER TABLE managed_databases ADD COLUMN statement_timeout_ms BIGINT NOT NULL DEFAULT 1800000;
