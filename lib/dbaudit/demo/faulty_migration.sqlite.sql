-- DELIBERATELY FAULTY version of webjs_migration.sqlite.sql, for SQLite. Do not use it on real data.
--
-- It makes the intended Web.js changes and then three mistakes an audit must catch:
--   1. an unplanned column, chats.legacy_provider (chats ends with 19 columns, not 18);
--   2. data loss: it deletes every contact whose id is a multiple of 10, and the ON DELETE CASCADE
--      from contacts takes those contacts' chats with them (needs PRAGMA foreign_keys = ON);
--   3. a lost index: whatsapp_sessions_status_index is dropped.

-- Part 1: group chats (as intended).

CREATE TABLE whatsapp_groups (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(36) NOT NULL,
    workspace_id bigint NOT NULL,
    whatsapp_session_id bigint NOT NULL,
    group_jid varchar(255) NOT NULL,
    name varchar(255) NOT NULL,
    description text,
    owner_phone varchar(50),
    participants text NOT NULL,
    invite_code varchar(255),
    settings text,
    group_created_at datetime,
    created_at datetime,
    updated_at datetime,
    CONSTRAINT whatsapp_groups_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    CONSTRAINT whatsapp_groups_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX whatsapp_groups_uuid_unique ON whatsapp_groups (uuid);
CREATE UNIQUE INDEX whatsapp_groups_group_jid_unique ON whatsapp_groups (group_jid);
CREATE INDEX idx_groups_workspace ON whatsapp_groups (workspace_id);
CREATE INDEX idx_groups_session ON whatsapp_groups (whatsapp_session_id);
CREATE INDEX idx_groups_workspace_session ON whatsapp_groups (workspace_id, whatsapp_session_id);

ALTER TABLE chats ADD COLUMN provider_type varchar(20);
-- Mistake 1: left over from an abandoned draft of the migration.
ALTER TABLE chats ADD COLUMN legacy_provider varchar(20);
ALTER TABLE chats ADD COLUMN chat_type varchar(10) CHECK (chat_type IN ('private', 'group'));
ALTER TABLE chats ADD COLUMN group_id bigint
    CONSTRAINT fk_chats_group_id REFERENCES whatsapp_groups (id) ON DELETE SET NULL;

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
DROP INDEX whatsapp_sessions_status_index;
