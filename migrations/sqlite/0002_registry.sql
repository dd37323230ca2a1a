-- The registry of managed databases added in the panel or with the CLI.
-- (Databases declared in custodian.toml are not stored.) The connection URL
-- is sealed with the panel's key; url_redacted (password replaced by ***)
-- is what pages show.
CREATE TABLE managed_databases (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT   NOT NULL UNIQUE,
    engine         TEXT   NOT NULL CHECK (engine IN ('postgres', 'mysql', 'sqlite')),
    url_sealed     TEXT   NOT NULL,
    url_redacted   TEXT   NOT NULL,
    migrations_dir TEXT,
    rpo_seconds    BIGINT,
    rto_seconds    BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
