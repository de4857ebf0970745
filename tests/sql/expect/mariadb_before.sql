-- dbaudit expect tests: a small shop schema before its "billing" migration (MariaDB 10.11 / MySQL 8).
-- orders.customer_id has no index of its own: InnoDB makes one named after the key.
SET NAMES utf8mb4;
CREATE TABLE customers (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    email varchar(191) NOT NULL,
    name varchar(100) NULL,
    status varchar(20) NOT NULL DEFAULT 'active',
    legacy_code char(8) NULL COMMENT 'old CRM',
    created_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY customers_email_unique (email),
    KEY customers_status_index (status),
    KEY customers_legacy_code_index (legacy_code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE orders (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    customer_id bigint unsigned NOT NULL,
    total decimal(10,2) NOT NULL DEFAULT 0,
    note text NULL,
    placed_at datetime NULL,
    PRIMARY KEY (id),
    CONSTRAINT orders_customer_id_foreign FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE audit_log (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, message varchar(255) NULL) ENGINE=InnoDB;
CREATE TABLE old_things (id int NOT NULL PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE migrations (
    id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    migration varchar(255) NOT NULL,
    batch int NOT NULL
) ENGINE=InnoDB;
INSERT INTO customers (email, name, status, legacy_code) VALUES
    ('a@example.com', 'Ann', 'active', 'A1'), ('b@example.com', 'Bob', 'vip', 'B2'), ('c@example.com', 'Cy', 'active', NULL);
INSERT INTO orders (customer_id, total, placed_at) VALUES (1, 10.50, '2026-01-01'), (1, 0, NULL), (2, 99.00, '2026-02-01');
INSERT INTO audit_log (message) VALUES ('created');
INSERT INTO old_things VALUES (1);
INSERT INTO migrations (migration, batch) VALUES ('2026_01_01_000000_create_shop', 1);
