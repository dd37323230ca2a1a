-- A user's credential generation: every password change adds one. A session
-- remembers the generation it signed in under and ends when it no longer
-- matches, so a password change signs the user out everywhere else.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
