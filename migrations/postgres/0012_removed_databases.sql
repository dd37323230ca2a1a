-- Databases removed from the registry. Their history (backups, jobs,
-- migration requests, alerts) moves from the name to `key`, a name no
-- registration can take ("orders~1a2b3c4d5e6f"), so a database registered
-- later under the same name starts clean, and the removed one's backups
-- stay listed until pruned.
CREATE TABLE removed_databases (
    key        TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    engine     TEXT   NOT NULL,
    removed_at BIGINT NOT NULL
);
