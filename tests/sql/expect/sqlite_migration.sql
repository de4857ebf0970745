-- The "billing" migration for SQLite (one ALTER clause per statement, as SQLite requires).
ALTER TABLE customers ADD COLUMN tier TEXT NOT NULL DEFAULT 'free';
ALTER TABLE customers ADD COLUMN score NUMERIC(6, 2);
ALTER TABLE customers RENAME COLUMN legacy_code TO external_ref;
ALTER TABLE customers DROP COLUMN note;
DROP INDEX customers_status;
CREATE INDEX customers_tier_status ON customers (tier, status);

CREATE TABLE invoices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER REFERENCES orders (id) ON DELETE SET NULL,
    number varchar(40) NOT NULL,
    amount REAL NOT NULL DEFAULT 0,
    issued_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (number)
);
CREATE UNIQUE INDEX invoices_positive ON invoices (amount) WHERE amount > 0;
-- sqlglot knows neither the trigger body nor WITHOUT ROWID: warnings, read by their leading words.
CREATE TRIGGER invoices_note AFTER INSERT ON invoices BEGIN
    UPDATE orders SET note = 'invoiced' WHERE id = NEW.order_id;
END;
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE VIEW customer_totals AS SELECT c.id, c.email, SUM(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id;

ALTER TABLE audit_log RENAME TO activity_log;
DROP TABLE old_things;

UPDATE customers SET tier = 'pro' WHERE status = 'vip';
DELETE FROM orders WHERE total = 0;
INSERT INTO schema_migrations VALUES ('20260301000000');
