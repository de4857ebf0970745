-- dbaudit expect tests: the shop schema before its "billing" migration (PostgreSQL 15).
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email varchar(191) NOT NULL UNIQUE,
    name varchar(100),
    status varchar(20) NOT NULL DEFAULT 'active',
    legacy_code char(8),
    created_at timestamp
);
CREATE INDEX customers_legacy_code_idx ON customers (legacy_code);
CREATE INDEX customers_status_idx ON customers (status);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    total numeric(10,2) NOT NULL DEFAULT 0,
    note text,
    placed_at timestamptz
);
CREATE TABLE audit_log (id serial PRIMARY KEY, message text);
CREATE TABLE old_things (id integer PRIMARY KEY);
CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL,
                                applied timestamptz NOT NULL);
INSERT INTO customers (email, name, status, legacy_code) VALUES
    ('a@example.com', 'Ann', 'active', 'A1'), ('b@example.com', 'Bob', 'vip', 'B2'), ('c@example.com', 'Cy', 'active', NULL);
INSERT INTO orders (customer_id, total, placed_at) VALUES (1, 10.50, '2026-01-01'), (1, 0, NULL), (2, 99.00, '2026-02-01');
INSERT INTO audit_log (message) VALUES ('created');
INSERT INTO old_things VALUES (1);
INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0001_initial', now());
