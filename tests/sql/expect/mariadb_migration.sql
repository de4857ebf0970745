-- The "billing" migration, as a DBA would run it with `mariadb shop < this file`.
SET NAMES utf8mb4;

-- One ALTER, many clauses: MySQL-only syntax (backticks, AFTER, COMMENT, ENUM, ON UPDATE).
ALTER TABLE `customers`
    ADD COLUMN `tier` enum('free','pro','enterprise') NOT NULL DEFAULT 'free' COMMENT 'Billing tier' AFTER `email`,
    ADD COLUMN `updated_at` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    MODIFY COLUMN `name` varchar(150) NOT NULL DEFAULT '',
    CHANGE COLUMN `legacy_code` `external_ref` varchar(32) NULL COMMENT 'CRM id',
    DROP INDEX `customers_status_index`,
    ADD INDEX `customers_tier_status_index` (`tier`, `status`);

-- InnoDB drops the index it made for orders_customer_id_foreign once this one starts with its column.
CREATE INDEX orders_customer_placed_index ON orders (customer_id, placed_at);

ALTER TABLE orders
    ADD COLUMN currency char(3) NOT NULL DEFAULT 'EUR' AFTER total,
    ADD COLUMN paid tinyint(1) NOT NULL DEFAULT 0,
    ADD CONSTRAINT orders_total_positive CHECK (total >= 0);

CREATE TABLE invoices (
    id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id bigint unsigned NULL,
    number varchar(40) NOT NULL,
    amount decimal(10,2) NOT NULL DEFAULT 0.00,
    line_items json NULL,
    issued_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY invoices_number_unique (number),
    CONSTRAINT invoices_order_id_foreign FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

RENAME TABLE audit_log TO activity_log;
DROP TABLE old_things;

CREATE VIEW customer_totals AS SELECT c.id, c.email, SUM(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.email;

-- Bodies sqlglot cannot parse: read by their leading words, listed as warnings.
DELIMITER $$
CREATE TRIGGER orders_before_insert BEFORE INSERT ON orders FOR EACH ROW
BEGIN
    IF NEW.total < 0 THEN
        SET NEW.total = 0;
    END IF;
END$$
CREATE PROCEDURE archive_orders(IN cutoff datetime)
BEGIN
    DELETE FROM orders WHERE placed_at < cutoff;
END$$
DELIMITER ;
CREATE EVENT purge_activity ON SCHEDULE EVERY 1 DAY DO DELETE FROM activity_log WHERE id < 0;

-- Data: a table deleted from may shrink; one only updated may not.
UPDATE customers SET tier = 'pro' WHERE status = 'vip';
DELETE FROM orders WHERE total = 0;
UPDATE invoices SET amount = 0;
INSERT INTO migrations (migration, batch) VALUES ('2026_03_01_000000_billing', 2);
