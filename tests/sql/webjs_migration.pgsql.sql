-- blazz "WhatsApp Web.js" migration (both parts) for PostgreSQL 15, as Laravel's pgsql grammar runs it, on top
-- of blazz_schema.pgsql.sql: chats gains provider_type, chat_type and group_id (nullable), whatsapp_groups is
-- new, chats gains 7 indexes and the fk_chats_group_id key; no existing row changes.

-- Part 1: group chats.
ALTER TABLE chats ADD COLUMN provider_type varchar(20) NULL;
ALTER TABLE chats ADD COLUMN chat_type varchar(255) NULL CHECK (chat_type IN ('private', 'group'));
ALTER TABLE chats ADD COLUMN group_id bigint NULL;
COMMENT ON COLUMN chats.provider_type IS 'Provider: meta | webjs';

CREATE TABLE whatsapp_groups (
    id bigserial PRIMARY KEY,
    uuid varchar(36) NOT NULL,
    workspace_id bigint NOT NULL,
    whatsapp_session_id bigint NOT NULL,
    group_jid varchar(255) NOT NULL,
    name varchar(255) NOT NULL,
    description text NULL,
    owner_phone varchar(50) NULL,
    participants jsonb NOT NULL,
    invite_code varchar(255) NULL,
    settings jsonb NULL,
    group_created_at timestamp(0) NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    CONSTRAINT whatsapp_groups_uuid_unique UNIQUE (uuid),
    CONSTRAINT whatsapp_groups_group_jid_unique UNIQUE (group_jid),
    CONSTRAINT whatsapp_groups_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    CONSTRAINT whatsapp_groups_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE CASCADE
);
CREATE INDEX idx_groups_workspace ON whatsapp_groups (workspace_id);
CREATE INDEX idx_groups_session ON whatsapp_groups (whatsapp_session_id);
CREATE INDEX idx_groups_workspace_session ON whatsapp_groups (workspace_id, whatsapp_session_id);

-- Deleting a group keeps its messages; they just stop pointing at it.
ALTER TABLE chats ADD CONSTRAINT fk_chats_group_id FOREIGN KEY (group_id)
    REFERENCES whatsapp_groups (id) ON DELETE SET NULL;

-- Part 2: indexes for the chat list.
CREATE INDEX idx_chats_provider_type ON chats (workspace_id, provider_type, created_at);
CREATE INDEX idx_chats_chat_type ON chats (workspace_id, chat_type, created_at);
CREATE INDEX idx_chats_type_session ON chats (workspace_id, chat_type, whatsapp_session_id, created_at);
CREATE INDEX idx_chats_provider_session ON chats (workspace_id, provider_type, whatsapp_session_id);
CREATE INDEX idx_chats_contact_chat ON chats (contact_id, created_at);
CREATE INDEX idx_chats_group_chat ON chats (group_id, created_at);
CREATE INDEX idx_chats_workspace_session_created ON chats (workspace_id, whatsapp_session_id, created_at);
