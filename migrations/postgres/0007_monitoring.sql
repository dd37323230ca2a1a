-- Monitoring: one row of figures per database per sample. step 0 is a raw
-- sample; step 300 a five-minute roll-up of older raw samples (averages,
-- maxima for the "longest" figures). Retention keeps the table bounded.
CREATE TABLE metric_samples (
    database_name        TEXT   NOT NULL,
    at                   BIGINT NOT NULL,
    step                 BIGINT NOT NULL DEFAULT 0,
    connections          DOUBLE PRECISION,
    active               DOUBLE PRECISION,
    idle                 DOUBLE PRECISION,
    idle_in_xact         DOUBLE PRECISION,
    max_connections      DOUBLE PRECISION,
    commits_ps           DOUBLE PRECISION,
    rollbacks_ps         DOUBLE PRECISION,
    cache_hit            DOUBLE PRECISION,
    size_bytes           DOUBLE PRECISION,
    longest_query_s      DOUBLE PRECISION,
    longest_xact_s       DOUBLE PRECISION,
    longest_idle_xact_s  DOUBLE PRECISION,
    replication_lag_s    DOUBLE PRECISION,
    dead_tuples          DOUBLE PRECISION,
    xid_age              DOUBLE PRECISION,
    archive_failing      DOUBLE PRECISION,
    PRIMARY KEY (database_name, step, at)
);
CREATE INDEX metric_samples_at ON metric_samples (step, at);

-- Per-database settings of the built-in alert rules; a missing row means
-- the rule's defaults.
CREATE TABLE alert_rules (
    database_name TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    enabled       BOOLEAN NOT NULL,
    threshold     DOUBLE PRECISION,
    for_seconds   BIGINT  NOT NULL,
    PRIMARY KEY (database_name, rule)
);

-- Alerts: pending (condition seen, not yet for long enough), firing, then
-- resolved. At most one open (pending or firing) alert per database and rule.
CREATE TABLE alerts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    database_name TEXT   NOT NULL,
    rule          TEXT   NOT NULL,
    state         TEXT   NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    message       TEXT   NOT NULL DEFAULT '',
    value         DOUBLE PRECISION,
    started_at    BIGINT NOT NULL,
    fired_at      BIGINT,
    resolved_at   BIGINT,
    acked_by      TEXT,
    acked_at      BIGINT,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX alerts_open ON alerts (database_name, rule) WHERE state IN ('pending', 'firing');
CREATE INDEX alerts_recent ON alerts (id);

-- Silences: notifications for a database (and one rule, or all when rule is
-- NULL) are held back until `until`; alerts still show.
CREATE TABLE alert_silences (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    database_name TEXT   NOT NULL,
    rule          TEXT,
    until_at      BIGINT NOT NULL,
    reason        TEXT   NOT NULL DEFAULT '',
    created_by    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Webhooks notified on firing and resolved alerts. The URL (Slack's carries
-- a secret) is sealed like managed databases' URLs.
CREATE TABLE webhooks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    url_sealed  TEXT   NOT NULL,
    format      TEXT   NOT NULL CHECK (format IN ('json', 'slack')),
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One notification to one webhook, retried with backoff until delivered
-- or out of attempts. The payload is fixed when the alert changes state.
CREATE TABLE alert_deliveries (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     BIGINT NOT NULL,
    webhook_id   BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event        TEXT   NOT NULL CHECK (event IN ('firing', 'resolved')),
    payload      TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    last_error   TEXT,
    delivered_at BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (state, next_at);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
