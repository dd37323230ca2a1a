-- Sample rows for the demo shop: deterministic, a few thousand rows in all.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
INSERT INTO customers (id, email, name, country, created_at)
SELECT i,
       'customer' || i || '@example.com',
       'Customer ' || i,
       CASE i % 5 WHEN 0 THEN 'DE' WHEN 1 THEN 'US' WHEN 2 THEN 'FR' WHEN 3 THEN 'BR' ELSE 'JP' END,
       datetime('2026-01-01', '+' || (i % 300) || ' days')
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
INSERT INTO products (id, sku, title, price_cents)
SELECT i, printf('SKU-%04d', i), 'Product ' || i, 199 + (i * 137) % 9800 FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
INSERT INTO orders (id, customer_id, placed_at, status)
SELECT i,
       1 + (i * 7) % 400,
       datetime('2026-02-01', '+' || (i % 280) || ' days', '+' || (i % 24) || ' hours'),
       CASE i % 10 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'placed' ELSE 'shipped' END
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
INSERT INTO order_lines (order_id, product_id, quantity)
SELECT i, 1 + (i * 13) % 60, 1 + i % 3 FROM n
UNION ALL
SELECT i, 1 + (i * 29 + 7) % 60, 1 FROM n WHERE i % 2 = 0 AND (i * 29 + 7) % 60 <> (i * 13) % 60;
