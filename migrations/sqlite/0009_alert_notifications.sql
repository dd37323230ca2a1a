-- Whether an alert's "firing" went out: its "resolved" goes out exactly
-- when it did, silence or not, so receivers always see pairs. The query
-- text behind an alert is kept apart from its message: pages show it,
-- notifications, logs and the audit log do not (SQL can hold secrets).
ALTER TABLE alerts ADD COLUMN notified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE alerts ADD COLUMN query TEXT;
