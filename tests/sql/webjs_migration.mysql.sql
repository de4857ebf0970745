-- blazz "WhatsApp Web.js" migration (both parts), for MariaDB 10.11 / MySQL 8, applied on top of
-- blazz_schema.mysql.sql: `mariadb DBNAME < this file`.
--
-- Expected result: chats goes from 15 to 18 columns, whatsapp_groups is new, chats gains 7 indexes
-- plus the fk_chats_group_id key, and no existing row changes (the new chats columns are NULL).

SET NAMES utf8mb4;

-- Part 1: group chats.

-- NULL rather than a default: existing chats came through the Meta API, and back-filling them is a
-- separate data step, not part of the schema change.
ALTER TABLE chats
    ADD COLUMN provider_type varchar(20) NULL COMMENT 'Provider: meta | webjs' AFTER status,
    ADD COLUMN chat_type enum('private','group') NULL AFTER provider_type,
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

-- Deleting a group keeps its messages; they just stop pointing at it.
ALTER TABLE chats
    ADD CONSTRAINT fk_chats_group_id FOREIGN KEY (group_id)
        REFERENCES whatsapp_groups (id) ON DELETE SET NULL;

-- Part 2: indexes for the chat list, which filters by workspace and provider or chat type and
-- sorts by created_at.

CREATE INDEX idx_chats_provider_type ON chats (workspace_id, provider_type, created_at);
CREATE INDEX idx_chats_chat_type ON chats (workspace_id, chat_type, created_at);
CREATE INDEX idx_chats_type_session ON chats (workspace_id, chat_type, whatsapp_session_id, created_at);
CREATE INDEX idx_chats_provider_session ON chats (workspace_id, provider_type, whatsapp_session_id);
CREATE INDEX idx_chats_contact_chat ON chats (contact_id, created_at);
CREATE INDEX idx_chats_group_chat ON chats (group_id, created_at);
CREATE INDEX idx_chats_workspace_session_created ON chats (workspace_id, whatsapp_session_id, created_at);
