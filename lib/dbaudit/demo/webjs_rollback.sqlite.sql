-- The blazz Web.js migration rolled back, for SQLite: what `php artisan migrate:rollback --step=2` does.
--
-- SQLite cannot drop a column that holds a foreign key, so chats is rebuilt the way Laravel does it:
-- a new table with the columns it had before, the rows copied, the old table dropped, the new one
-- renamed and its indexes recreated. Foreign keys are off while it is rebuilt (contacts' rows stay).

PRAGMA foreign_keys = OFF;

DROP INDEX idx_chats_provider_type;
DROP INDEX idx_chats_chat_type;
DROP INDEX idx_chats_type_session;
DROP INDEX idx_chats_provider_session;
DROP INDEX idx_chats_contact_chat;
DROP INDEX idx_chats_group_chat;
DROP INDEX idx_chats_workspace_session_created;

CREATE TABLE __temp__chats (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    workspace_id integer NOT NULL,
    whatsapp_session_id bigint,
    wam_id varchar(128),
    contact_id bigint NOT NULL,
    type varchar(10) CHECK (type IN ('inbound', 'outbound')),
    metadata text NOT NULL,
    media_id integer,
    status varchar(128) NOT NULL,
    is_read tinyint(1) NOT NULL DEFAULT 0,
    deleted_by integer,
    deleted_at datetime,
    created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at datetime,
    CONSTRAINT chats_contact_id_foreign FOREIGN KEY (contact_id)
        REFERENCES contacts (id) ON DELETE CASCADE,
    CONSTRAINT chats_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE SET NULL
);
INSERT INTO __temp__chats (id, uuid, workspace_id, whatsapp_session_id, wam_id, contact_id, type, metadata, media_id,
                           status, is_read, deleted_by, deleted_at, created_at, updated_at)
    SELECT id, uuid, workspace_id, whatsapp_session_id, wam_id, contact_id, type, metadata, media_id,
           status, is_read, deleted_by, deleted_at, created_at, updated_at FROM chats;
DROP TABLE chats;
ALTER TABLE __temp__chats RENAME TO chats;
CREATE UNIQUE INDEX chats_uuid_unique ON chats (uuid);
CREATE INDEX chats_workspace_id_index ON chats (workspace_id);
CREATE INDEX chats_whatsapp_session_id_index ON chats (whatsapp_session_id);
CREATE INDEX chats_contact_id_index ON chats (contact_id);
CREATE INDEX chats_wam_id_index ON chats (wam_id);

DROP TABLE whatsapp_groups;

PRAGMA foreign_keys = ON;
