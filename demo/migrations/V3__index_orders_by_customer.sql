-- Customer order history is the shop's most common query.
CREATE INDEX orders_customer_id ON orders (customer_id, placed_at);
