-- Pending and dangerous: status moves to an order_events table; dropping
-- the column breaks any reader still using it (expand-contract says:
-- stop reading it first, drop it in a later release).
ALTER TABLE orders DROP COLUMN status;
