-- Leases: one panel instance at a time does a shared duty (sampling the
-- fleet) when several share this store. The holder renews before until_at;
-- if it dies, another takes over once until_at has passed.
CREATE TABLE leases (
    name     TEXT   PRIMARY KEY,
    holder   TEXT   NOT NULL,
    until_at BIGINT NOT NULL
);
