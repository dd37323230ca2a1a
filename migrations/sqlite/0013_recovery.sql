-- Point-in-time recovery on pgBackRest. A database may name a stanza (and
-- a pgBackRest config file), schedules for physical backups and verify
-- ("full 0 1 * * 0; incr 0 * * * *; verify 0 4 * * *"), a drill schedule
-- and a proof query that a drill's restored server must answer true.
ALTER TABLE managed_databases ADD COLUMN pgbackrest_stanza TEXT;
ALTER TABLE managed_databases ADD COLUMN pgbackrest_config TEXT;
ALTER TABLE managed_databases ADD COLUMN pgbackrest_schedule TEXT;
ALTER TABLE managed_databases ADD COLUMN recovery_drill_schedule TEXT;
ALTER TABLE managed_databases ADD COLUMN recovery_proof_sql TEXT;

-- Restores into new servers (and drills). pgBackRest's own catalog is the
-- catalog of physical backups: the panel keeps no second copy of it.
CREATE TABLE recovery_restores (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    database_name TEXT    NOT NULL,
    drill         BOOLEAN NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('restoring', 'ready', 'passed', 'failed', 'interrupted', 'discarded')),
    job_id        BIGINT,
    requested_by  TEXT    NOT NULL,
    -- The target: a time (microseconds since the epoch), a transaction
    -- (exclusive), or neither (the end of the archive).
    target_us     BIGINT,
    target_xid    BIGINT,
    backup_label  TEXT    NOT NULL DEFAULT '',
    -- What the server reached, from its log.
    reached       TEXT    NOT NULL DEFAULT '',
    new_database  TEXT    NOT NULL DEFAULT '',
    port          BIGINT,
    dir           TEXT    NOT NULL DEFAULT '',
    os_user       TEXT    NOT NULL DEFAULT '',
    pg_bin        TEXT    NOT NULL DEFAULT '',
    rto_ms        BIGINT,
    proof         TEXT    NOT NULL DEFAULT '',
    error         TEXT,
    created_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    discarded_at  BIGINT
);
CREATE INDEX recovery_restores_database ON recovery_restores (database_name, id);

-- The panel's record of which file holds which relation, so the timeline
-- can name a relation after it is dropped (the WAL names files only).
CREATE TABLE recovery_relations (
    database_name TEXT   NOT NULL,
    relfilenode   BIGINT NOT NULL,
    rel_oid       BIGINT NOT NULL,
    name          TEXT   NOT NULL,
    -- pg_class.relkind: r table, p partitioned, m matview, i index, t toast.
    relkind       TEXT   NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (database_name, relfilenode)
);
