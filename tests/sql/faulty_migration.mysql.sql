-- DELIBERATELY FAULTY version of webjs_migration.mysql.sql, for MariaDB 10.11 / MySQL 8.
-- Do not use it on real data.
--
-- It makes the intended Web.js changes and then three mistakes an audit must catch:
--   1. an unplanned column, chats.legacy_provider (chats ends with 19 columns, not 18);
--   2. data loss: it deletes every contact whose id is a multiple of 10, and the ON DELETE CASCADE
--      from contacts takes those contacts' chats with them;
--   3. a lost index: whatsapp_sessions_status_index is dropped.

SET NAMES utf8mb4;

-- Part 1: group chats (as intended, plus mistake 1).

ALTER TABLE chats
    ADD COLUMN provider_type varchar(20) NULL COMMENT 'Provider: meta | webjs' AFTER status,
    -- Mistake 1: left over from an abandoned draft of the migration.
    ADD COLUMN legacy_provider varchar(20) NULL AFTER provider_type,
    ADD COLUMN chat_type enum('private','group') NULL AFTER legacy_provider,
    ADD COLUMN group_id bigint unsigned NULL AFTER contact_id;

CREATE TABLE whatsapp_groups (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    uuid char(36) NOT NULL,
    workspace_id bigint unsigned NOT NULL,
    whatsapp_session_id bigint unsigned NOT NULL,
    group_jid varchar(255) NOT NULL COMMENT 'WhatsApp group JID, <digits>@g.us',
    name varchar(255) NOT NULL,
    description text NULL,
    owner_phone varchar(50) NULL,
    participants json NOT NULL COMMENT 'Array of {phone, name, isAdmin}',
    invite_code varchar(255) NULL,
    settings json NULL,
    group_created_at timestamp NULL DEFAULT NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY whatsapp_groups_uuid_unique (uuid),
    UNIQUE KEY whatsapp_groups_group_jid_unique (group_jid),
    KEY idx_groups_workspace (workspace_id),
    KEY idx_groups_session (whatsapp_session_id),
    KEY idx_groups_workspace_session (workspace_id, whatsapp_session_id),
    CONSTRAINT whatsapp_groups_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    CONSTRAINT whatsapp_groups_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE chats
    ADD CONSTRAINT fk_chats_group_id FOREIGN KEY (group_id)
        REFERENCES whatsapp_groups (id) ON DELETE SET NULL;

-- Part 2: chat list indexes (as intended).

CREATE INDEX idx_chats_provider_type ON chats (workspace_id, provider_type, created_at);
CREATE INDEX idx_chats_chat_type ON chats (workspace_id, chat_type, created_at);
CREATE INDEX idx_chats_type_session ON chats (workspace_id, chat_type, whatsapp_session_id, created_at);
CREATE INDEX idx_chats_provider_session ON chats (workspace_id, provider_type, whatsapp_session_id);
CREATE INDEX idx_chats_contact_chat ON chats (contact_id, created_at);
CREATE INDEX idx_chats_group_chat ON chats (group_id, created_at);
CREATE INDEX idx_chats_workspace_session_created ON chats (workspace_id, whatsapp_session_id, created_at);

-- Mistake 2: a "duplicate contacts cleanup" run against the wrong condition.
DELETE FROM contacts WHERE id % 10 = 0;

-- Mistake 3: dropped while "tidying" indexes, though session health checks filter on status.
DROP INDEX whatsapp_sessions_status_index ON whatsapp_sessions;
