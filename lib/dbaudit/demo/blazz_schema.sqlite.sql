-- blazz (Laravel WhatsApp business app), schema before the "WhatsApp Web.js" migration, for SQLite.
--
-- Table, column and index names match tests/sql/blazz_schema.mysql.sql exactly, so the same sample
-- rows load into both and snapshots of the two differ only where the dialects do. Types follow what
-- Laravel's SQLite grammar writes (integer primary key autoincrement, datetime for timestamps, text
-- for json). Every index is created by name, never by an inline UNIQUE, so that SQLite does not
-- invent sqlite_autoindex_* names that MySQL would not have.
--
-- Load with foreign keys on (PRAGMA foreign_keys = ON): the faulty migration relies on the CASCADE
-- from contacts to chats to lose chat rows as well.

CREATE TABLE workspaces (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    identifier varchar(128) NOT NULL,
    name varchar(128) NOT NULL,
    address text,
    metadata text,
    timezone varchar(128),
    -- Points at users.id, but the app declares no key for it (and workspaces load before users).
    created_by integer NOT NULL,
    created_at datetime,
    updated_at datetime,
    deleted_at datetime,
    deleted_by integer
);
CREATE UNIQUE INDEX workspaces_uuid_unique ON workspaces (uuid);

CREATE TABLE users (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    first_name varchar(128) NOT NULL,
    last_name varchar(128) NOT NULL,
    email varchar(191) NOT NULL,
    avatar varchar(191),
    role varchar(128) NOT NULL DEFAULT 'user',
    phone varchar(191),
    address text,
    email_verified_at datetime,
    password varchar(255) NOT NULL,
    status tinyint(1) NOT NULL DEFAULT 1,
    remember_token varchar(100),
    created_at datetime,
    updated_at datetime,
    deleted_at datetime
);
CREATE UNIQUE INDEX users_email_unique ON users (email);

CREATE TABLE contact_groups (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    workspace_id bigint NOT NULL,
    name varchar(128) NOT NULL,
    created_by integer NOT NULL,
    created_at datetime,
    updated_at datetime,
    deleted_at datetime,
    CONSTRAINT contact_groups_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX contact_groups_uuid_unique ON contact_groups (uuid);
CREATE INDEX contact_groups_workspace_id_index ON contact_groups (workspace_id);

CREATE TABLE contacts (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    workspace_id bigint NOT NULL,
    contact_group_id bigint,
    first_name varchar(128),
    last_name varchar(128),
    phone varchar(191) NOT NULL,
    email varchar(191),
    latest_chat_created_at datetime,
    avatar varchar(191),
    address text,
    metadata text,
    is_favorite tinyint(1) NOT NULL DEFAULT 0,
    ai_assistance_enabled tinyint(1) NOT NULL DEFAULT 0,
    created_by integer NOT NULL,
    created_at datetime,
    updated_at datetime,
    deleted_at datetime,
    CONSTRAINT contacts_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Deleting a group must not delete the people in it.
    CONSTRAINT contacts_contact_group_id_foreign FOREIGN KEY (contact_group_id)
        REFERENCES contact_groups (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX contacts_uuid_unique ON contacts (uuid);
CREATE INDEX contacts_workspace_id_index ON contacts (workspace_id);
CREATE INDEX contacts_contact_group_id_index ON contacts (contact_group_id);
-- The same number may be a contact in two workspaces, but only once in each.
CREATE UNIQUE INDEX contacts_workspace_id_phone_unique ON contacts (workspace_id, phone);
-- contacts_fulltext (MySQL FULLTEXT) has no SQLite counterpart; FTS5 would be a separate table.

CREATE TABLE whatsapp_sessions (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    workspace_id bigint NOT NULL,
    session_id varchar(191) NOT NULL,
    phone_number varchar(50),
    provider_type varchar(20) NOT NULL DEFAULT 'webjs',
    -- connected | disconnected | qr_scanning | failed; left open (no CHECK) as in the app.
    status varchar(20) NOT NULL DEFAULT 'disconnected',
    qr_code text,
    is_primary tinyint(1) NOT NULL DEFAULT 0,
    is_active tinyint(1) NOT NULL DEFAULT 1,
    last_activity_at datetime,
    last_connected_at datetime,
    metadata text,
    created_by integer,
    created_at datetime,
    updated_at datetime,
    deleted_at datetime,
    CONSTRAINT whatsapp_sessions_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX whatsapp_sessions_uuid_unique ON whatsapp_sessions (uuid);
CREATE UNIQUE INDEX whatsapp_sessions_session_id_unique ON whatsapp_sessions (session_id);
CREATE INDEX whatsapp_sessions_workspace_id_index ON whatsapp_sessions (workspace_id);
CREATE INDEX whatsapp_sessions_status_index ON whatsapp_sessions (status);

-- Exactly the 15 columns the production table had before the Web.js change, in the same order.
CREATE TABLE chats (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    -- No foreign key: the real app never declared one (in MySQL it is int against bigint unsigned),
    -- so orphaned chats are possible and an audit has to look for them itself.
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
    -- A chat outlives the session it came in on (sessions get re-paired).
    CONSTRAINT chats_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX chats_uuid_unique ON chats (uuid);
CREATE INDEX chats_workspace_id_index ON chats (workspace_id);
CREATE INDEX chats_whatsapp_session_id_index ON chats (whatsapp_session_id);
CREATE INDEX chats_contact_id_index ON chats (contact_id);
CREATE INDEX chats_wam_id_index ON chats (wam_id);

CREATE TABLE templates (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    workspace_id bigint NOT NULL,
    meta_id varchar(128) NOT NULL,
    name varchar(128) NOT NULL,
    category varchar(128) NOT NULL,
    language varchar(128) NOT NULL,
    metadata text NOT NULL,
    status varchar(128) NOT NULL,
    created_by integer NOT NULL,
    created_at datetime,
    updated_at datetime,
    deleted_at datetime,
    CONSTRAINT templates_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX templates_uuid_unique ON templates (uuid);
CREATE INDEX templates_workspace_id_index ON templates (workspace_id);

CREATE TABLE campaigns (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid char(50) NOT NULL,
    workspace_id bigint NOT NULL,
    name varchar(128) NOT NULL,
    template_id bigint,
    contact_group_id bigint,
    metadata text,
    status varchar(128) NOT NULL DEFAULT 'pending',
    scheduled_at datetime,
    created_by integer NOT NULL,
    deleted_by integer,
    created_at datetime,
    updated_at datetime,
    deleted_at datetime,
    CONSTRAINT campaigns_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE,
    -- A sent campaign stays in the history after its template or audience is removed.
    CONSTRAINT campaigns_template_id_foreign FOREIGN KEY (template_id)
        REFERENCES templates (id) ON DELETE SET NULL,
    CONSTRAINT campaigns_contact_group_id_foreign FOREIGN KEY (contact_group_id)
        REFERENCES contact_groups (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX campaigns_uuid_unique ON campaigns (uuid);
CREATE INDEX campaigns_workspace_id_index ON campaigns (workspace_id);
CREATE INDEX campaigns_template_id_index ON campaigns (template_id);
CREATE INDEX campaigns_contact_group_id_index ON campaigns (contact_group_id);

-- Laravel's database queue driver.
CREATE TABLE jobs (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    queue varchar(255) NOT NULL,
    payload text NOT NULL,
    attempts tinyint NOT NULL,
    reserved_at integer,
    available_at integer NOT NULL,
    created_at integer NOT NULL
);
CREATE INDEX jobs_queue_index ON jobs (queue);

CREATE TABLE failed_jobs (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid varchar(255) NOT NULL,
    connection text NOT NULL,
    queue text NOT NULL,
    payload text NOT NULL,
    exception text NOT NULL,
    failed_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX failed_jobs_uuid_unique ON failed_jobs (uuid);

CREATE TABLE migrations (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    migration varchar(255) NOT NULL,
    batch integer NOT NULL
);
