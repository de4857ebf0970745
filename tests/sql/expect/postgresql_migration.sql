-- The "billing" migration for PostgreSQL, as `psql -f` would run it.
CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');

ALTER TABLE customers
    ADD COLUMN tier varchar(20) NOT NULL DEFAULT 'free',
    ADD COLUMN score numeric(6,2),
    ALTER COLUMN name TYPE varchar(150),
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN status SET DEFAULT 'new',
    DROP COLUMN legacy_code;
ALTER TABLE customers RENAME COLUMN created_at TO signed_up_at;
DROP INDEX customers_status_idx;
CREATE INDEX customers_tier_status_idx ON customers (tier, status);
CREATE UNIQUE INDEX customers_lower_email_idx ON customers (lower(email));

ALTER TABLE orders
    ADD COLUMN state order_state NOT NULL DEFAULT 'new',
    ADD COLUMN paid boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
CREATE INDEX CONCURRENTLY orders_state_idx ON orders (state);

CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    order_id bigint REFERENCES orders (id) ON DELETE SET NULL,
    number varchar(40) NOT NULL,
    amount numeric(10,2) NOT NULL DEFAULT 0,
    issued_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_number_key UNIQUE (number)
);
COMMENT ON COLUMN invoices.amount IS 'gross amount';

CREATE FUNCTION invoices_touch() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.issued_at := now();
    RETURN NEW;
END;
$fn$;
CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_touch();
CREATE VIEW customer_totals AS SELECT c.id, c.email, SUM(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.email;

ALTER TABLE audit_log RENAME TO activity_log;
DROP TABLE old_things;
DO $$ BEGIN RAISE NOTICE 'billing migrated'; END $$;

UPDATE customers SET tier = 'pro' WHERE status = 'vip';
DELETE FROM orders WHERE total = 0;
INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0002_billing', now());
