-- blazz (Laravel WhatsApp business app), schema before the "WhatsApp Web.js" migration, for
-- MariaDB 10.11 / MySQL 8. Load into an empty scratch database: `mariadb DBNAME < this file`.
--
-- Table, column and index names match lib/dbaudit/demo/blazz_schema.sqlite.sql exactly (plus the
-- FULLTEXT index, which SQLite has no equivalent for), so the same sample rows load into both.
-- Every foreign key column has its own named index, so InnoDB never adds one named after the
-- constraint and the index lists of the two dialects line up.

SET NAMES utf8mb4;

CREATE TABLE workspaces (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    identifier varchar(128) NOT NULL,
    name varchar(128) NOT NULL,
    address text NULL,
    metadata text NULL,
    timezone varchar(128) NULL,
    -- Points at users.id, but the app declares no key for it (and workspaces load before users).
    created_by int NOT NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    deleted_by int NULL,
    PRIMARY KEY (id),
    UNIQUE KEY workspaces_uuid_unique (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE users (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    first_name varchar(128) NOT NULL,
    last_name varchar(128) NOT NULL,
    email varchar(191) NOT NULL,
    avatar varchar(191) NULL,
    role varchar(128) NOT NULL DEFAULT 'user',
    phone varchar(191) NULL,
    address text NULL,
    email_verified_at timestamp NULL DEFAULT NULL,
    password varchar(255) NOT NULL,
    status tinyint(1) NOT NULL DEFAULT 1 COMMENT '1 active, 0 suspended',
    remember_token varchar(100) NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY users_email_unique (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE contact_groups (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    workspace_id bigint unsigned NOT NULL,
    name varchar(128) NOT NULL,
    created_by int NOT NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY contact_groups_uuid_unique (uuid),
    KEY contact_groups_workspace_id_index (workspace_id),
    CONSTRAINT contact_groups_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE contacts (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    workspace_id bigint unsigned NOT NULL,
    contact_group_id bigint unsigned NULL,
    first_name varchar(128) NULL,
    last_name varchar(128) NULL,
    phone varchar(191) NOT NULL COMMENT 'E.164, with the leading +',
    email varchar(191) NULL,
    latest_chat_created_at timestamp NULL DEFAULT NULL COMMENT 'Denormalised for sorting the inbox',
    avatar varchar(191) NULL,
    address text NULL,
    metadata text NULL,
    is_favorite tinyint(1) NOT NULL DEFAULT 0,
    ai_assistance_enabled tinyint(1) NOT NULL DEFAULT 0,
    created_by int NOT NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY contacts_uuid_unique (uuid),
    -- The same number may be a contact in two workspaces, but only once in each.
    UNIQUE KEY contacts_workspace_id_phone_unique (workspace_id, phone),
    KEY contacts_workspace_id_index (workspace_id),
    KEY contacts_contact_group_id_index (contact_group_id),
    FULLTEXT KEY contacts_fulltext (first_name, last_name, phone, email),
    CONSTRAINT contacts_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Deleting a group must not delete the people in it.
    CONSTRAINT contacts_contact_group_id_foreign FOREIGN KEY (contact_group_id)
        REFERENCES contact_groups (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE whatsapp_sessions (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    workspace_id bigint unsigned NOT NULL,
    session_id varchar(191) NOT NULL COMMENT 'Id the Node.js Web.js service knows the session by',
    phone_number varchar(50) NULL,
    provider_type varchar(20) NOT NULL DEFAULT 'webjs' COMMENT 'Provider: meta | webjs',
    -- Left open (no enum) as in the app, so an audit can spot unexpected values.
    status varchar(20) NOT NULL DEFAULT 'disconnected'
        COMMENT 'connected | disconnected | qr_scanning | failed',
    qr_code text NULL,
    is_primary tinyint(1) NOT NULL DEFAULT 0,
    is_active tinyint(1) NOT NULL DEFAULT 1,
    last_activity_at timestamp NULL DEFAULT NULL,
    last_connected_at timestamp NULL DEFAULT NULL,
    metadata json NULL,
    created_by int NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY whatsapp_sessions_uuid_unique (uuid),
    UNIQUE KEY whatsapp_sessions_session_id_unique (session_id),
    KEY whatsapp_sessions_workspace_id_index (workspace_id),
    KEY whatsapp_sessions_status_index (status),
    CONSTRAINT whatsapp_sessions_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Exactly the 15 columns the production table had before the Web.js change, in the same order.
CREATE TABLE chats (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    -- No foreign key: the real app never declared one (and int could not reference bigint
    -- unsigned anyway), so orphaned chats are possible and an audit has to look for them itself.
    workspace_id int NOT NULL,
    whatsapp_session_id bigint unsigned NULL,
    wam_id varchar(128) NULL COMMENT 'WhatsApp message id (wamid.*)',
    contact_id bigint unsigned NOT NULL,
    type enum('inbound','outbound') NULL,
    metadata text NOT NULL COMMENT 'Message payload as JSON',
    media_id int NULL,
    status varchar(128) NOT NULL,
    is_read tinyint(1) NOT NULL DEFAULT 0,
    deleted_by int NULL,
    deleted_at datetime NULL DEFAULT NULL,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY chats_uuid_unique (uuid),
    KEY chats_workspace_id_index (workspace_id),
    KEY chats_whatsapp_session_id_index (whatsapp_session_id),
    KEY chats_contact_id_index (contact_id),
    KEY chats_wam_id_index (wam_id),
    CONSTRAINT chats_contact_id_foreign FOREIGN KEY (contact_id)
        REFERENCES contacts (id) ON DELETE CASCADE,
    -- A chat outlives the session it came in on (sessions get re-paired).
    CONSTRAINT chats_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE templates (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    workspace_id bigint unsigned NOT NULL,
    meta_id varchar(128) NOT NULL COMMENT 'Template id in Meta Business Manager',
    name varchar(128) NOT NULL,
    category varchar(128) NOT NULL,
    language varchar(128) NOT NULL,
    metadata text NOT NULL,
    status varchar(128) NOT NULL,
    created_by int NOT NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY templates_uuid_unique (uuid),
    KEY templates_workspace_id_index (workspace_id),
    CONSTRAINT templates_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE campaigns (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(50) NOT NULL,
    workspace_id bigint unsigned NOT NULL,
    name varchar(128) NOT NULL,
    template_id bigint unsigned NULL,
    contact_group_id bigint unsigned NULL,
    metadata text NULL,
    status varchar(128) NOT NULL DEFAULT 'pending',
    scheduled_at timestamp NULL DEFAULT NULL,
    created_by int NOT NULL,
    deleted_by int NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY campaigns_uuid_unique (uuid),
    KEY campaigns_workspace_id_index (workspace_id),
    KEY campaigns_template_id_index (template_id),
    KEY campaigns_contact_group_id_index (contact_group_id),
    CONSTRAINT campaigns_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    -- A sent campaign stays in the history after its template or audience is removed.
    CONSTRAINT campaigns_template_id_foreign FOREIGN KEY (template_id)
        REFERENCES templates (id) ON DELETE SET NULL,
    CONSTRAINT campaigns_contact_group_id_foreign FOREIGN KEY (contact_group_id)
        REFERENCES contact_groups (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Laravel's database queue driver; the times are Unix seconds, as Laravel writes them.
CREATE TABLE jobs (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    queue varchar(255) NOT NULL,
    payload longtext NOT NULL,
    attempts tinyint unsigned NOT NULL,
    reserved_at int unsigned NULL,
    available_at int unsigned NOT NULL,
    created_at int unsigned NOT NULL,
    PRIMARY KEY (id),
    KEY jobs_queue_index (queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE failed_jobs (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid varchar(255) NOT NULL,
    connection text NOT NULL,
    queue text NOT NULL,
    payload longtext NOT NULL,
    exception longtext NOT NULL,
    failed_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY failed_jobs_uuid_unique (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE migrations (
    id int unsigned NOT NULL AUTO_INCREMENT,
    migration varchar(255) NOT NULL,
    batch int NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
