-- blazz "WhatsApp Web.js" migration (both parts), for SQLite, applied on top of blazz_schema.sqlite.sql.
--
-- Expected result: chats goes from 15 to 18 columns, whatsapp_groups is new, chats gains 7 indexes,
-- and no existing row changes (the new chats columns are NULL everywhere).
--
-- SQLite's ADD COLUMN cannot place a column (no AFTER) and cannot add a constraint to an existing
-- column, so the new columns land at the end of chats and the group_id key is declared inline.
-- That in turn means whatsapp_groups must exist before group_id is added, the reverse of the
-- MySQL version's order.

-- Part 1: group chats.

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

-- NULL rather than a default: existing chats came through the Meta API, and back-filling them is a
-- separate data step, not part of the schema change.
ALTER TABLE chats ADD COLUMN provider_type varchar(20);
ALTER TABLE chats ADD COLUMN chat_type varchar(10) CHECK (chat_type IN ('private', 'group'));
-- SQLite only accepts a REFERENCES column through ADD COLUMN when its default is NULL.
ALTER TABLE chats ADD COLUMN group_id bigint
    CONSTRAINT fk_chats_group_id REFERENCES whatsapp_groups (id) ON DELETE SET NULL;

-- Part 2: indexes for the chat list, which filters by workspace and provider or chat type and
-- sorts by created_at.

CREATE INDEX idx_chats_provider_type ON chats (workspace_id, provider_type, created_at);
CREATE INDEX idx_chats_chat_type ON chats (workspace_id, chat_type, created_at);
CREATE INDEX idx_chats_type_session ON chats (workspace_id, chat_type, whatsapp_session_id, created_at);
CREATE INDEX idx_chats_provider_session ON chats (workspace_id, provider_type, whatsapp_session_id);
CREATE INDEX idx_chats_contact_chat ON chats (contact_id, created_at);
CREATE INDEX idx_chats_group_chat ON chats (group_id, created_at);
CREATE INDEX idx_chats_workspace_session_created ON chats (workspace_id, whatsapp_session_id, created_at);
