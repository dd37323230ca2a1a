-- Pending: customers may leave a phone number.
ALTER TABLE customers ADD COLUMN phone TEXT;
