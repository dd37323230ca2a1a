-- Sign-in throttling: failures per (attempted name, client address), known
-- names and unknown ones alike. The name is kept only as a keyed hash
-- (people type passwords into the name box). This is working state, not
-- history (the audit log has that): a row goes when its user signs in, and
-- rows quiet for longer than the throttle window are pruned.
CREATE TABLE login_throttle (
    name_key    TEXT   NOT NULL,
    client_addr TEXT   NOT NULL,
    -- Attempts in this run, counted before the password is checked (so
    -- parallel guesses cannot all pass one check); cleared on success.
    failures    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    -- No attempt for this pair before this time.
    next_at     BIGINT NOT NULL,
    PRIMARY KEY (name_key, client_addr)
);
CREATE INDEX login_throttle_client ON login_throttle (client_addr, last_at);
CREATE INDEX login_throttle_last ON login_throttle (last_at);
