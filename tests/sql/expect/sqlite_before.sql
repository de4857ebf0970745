-- dbaudit expect tests: the shop schema before its "billing" migration (SQLite 3.35+).
CREATE TABLE customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email varchar(191) NOT NULL UNIQUE,
    name varchar(100),
    status varchar(20) NOT NULL DEFAULT 'active',
    legacy_code char(8),
    note text
);
CREATE INDEX customers_status ON customers (status);
CREATE INDEX customers_legacy ON customers (legacy_code);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    total numeric(10, 2) NOT NULL DEFAULT 0,
    note text
);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, message text);
CREATE TABLE old_things (id INTEGER PRIMARY KEY);
CREATE TABLE schema_migrations (version varchar(255) NOT NULL PRIMARY KEY);
INSERT INTO customers (email, name, status, legacy_code) VALUES
    ('a@example.com', 'Ann', 'active', 'A1'), ('b@example.com', 'Bob', 'vip', 'B2'), ('c@example.com', NULL, 'active', NULL);
INSERT INTO orders (customer_id, total) VALUES (1, 10.50), (1, 0), (2, 99.00);
INSERT INTO audit_log (message) VALUES ('created');
INSERT INTO old_things VALUES (1);
INSERT INTO schema_migrations VALUES ('20260101000000');
