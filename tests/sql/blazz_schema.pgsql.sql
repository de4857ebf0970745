-- blazz (Laravel WhatsApp business app), schema before the "WhatsApp Web.js" migration, for PostgreSQL 15,
-- as Laravel's pgsql grammar writes it (bigserial keys, varchar + CHECK for enums, named indexes). Table and
-- column names match blazz_schema.mysql.sql, so lib/dbaudit/demo/sample_data.py's rows load into both.

CREATE TABLE workspaces (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    identifier varchar(128) NOT NULL,
    name varchar(128) NOT NULL,
    address text NULL,
    metadata text NULL,
    timezone varchar(128) NULL,
    created_by integer NOT NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    deleted_by integer NULL,
    CONSTRAINT workspaces_uuid_unique UNIQUE (uuid)
);

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    first_name varchar(128) NOT NULL,
    last_name varchar(128) NOT NULL,
    email varchar(191) NOT NULL,
    avatar varchar(191) NULL,
    role varchar(128) NOT NULL DEFAULT 'user',
    phone varchar(191) NULL,
    address text NULL,
    email_verified_at timestamp(0) NULL,
    password varchar(255) NOT NULL,
    status smallint NOT NULL DEFAULT 1,
    remember_token varchar(100) NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    CONSTRAINT users_email_unique UNIQUE (email)
);

CREATE TABLE contact_groups (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name varchar(128) NOT NULL,
    created_by integer NOT NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    CONSTRAINT contact_groups_uuid_unique UNIQUE (uuid)
);
CREATE INDEX contact_groups_workspace_id_index ON contact_groups (workspace_id);

CREATE TABLE contacts (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    workspace_id bigint NOT NULL,
    contact_group_id bigint NULL,
    first_name varchar(128) NULL,
    last_name varchar(128) NULL,
    phone varchar(191) NOT NULL,
    email varchar(191) NULL,
    latest_chat_created_at timestamp(0) NULL,
    avatar varchar(191) NULL,
    address text NULL,
    metadata text NULL,
    is_favorite smallint NOT NULL DEFAULT 0,
    ai_assistance_enabled smallint NOT NULL DEFAULT 0,
    created_by integer NOT NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    CONSTRAINT contacts_uuid_unique UNIQUE (uuid),
    CONSTRAINT contacts_workspace_id_phone_unique UNIQUE (workspace_id, phone),
    CONSTRAINT contacts_workspace_id_foreign FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE,
    CONSTRAINT contacts_contact_group_id_foreign FOREIGN KEY (contact_group_id)
        REFERENCES contact_groups (id) ON DELETE SET NULL
);
CREATE INDEX contacts_workspace_id_index ON contacts (workspace_id);
CREATE INDEX contacts_contact_group_id_index ON contacts (contact_group_id);
COMMENT ON COLUMN contacts.phone IS 'E.164, with the leading +';

CREATE TABLE whatsapp_sessions (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    workspace_id bigint NOT NULL,
    session_id varchar(191) NOT NULL,
    phone_number varchar(50) NULL,
    provider_type varchar(20) NOT NULL DEFAULT 'webjs',
    status varchar(20) NOT NULL DEFAULT 'disconnected',
    qr_code text NULL,
    is_primary smallint NOT NULL DEFAULT 0,
    is_active smallint NOT NULL DEFAULT 1,
    last_activity_at timestamp(0) NULL,
    last_connected_at timestamp(0) NULL,
    metadata jsonb NULL,
    created_by integer NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    CONSTRAINT whatsapp_sessions_uuid_unique UNIQUE (uuid),
    CONSTRAINT whatsapp_sessions_session_id_unique UNIQUE (session_id),
    CONSTRAINT whatsapp_sessions_workspace_id_foreign FOREIGN KEY (workspace_id)
        REFERENCES workspaces (id) ON DELETE CASCADE
);
CREATE INDEX whatsapp_sessions_workspace_id_index ON whatsapp_sessions (workspace_id);
CREATE INDEX whatsapp_sessions_status_index ON whatsapp_sessions (status);

CREATE TABLE chats (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    workspace_id integer NOT NULL,
    whatsapp_session_id bigint NULL,
    wam_id varchar(128) NULL,
    contact_id bigint NOT NULL,
    type varchar(255) NULL CHECK (type IN ('inbound', 'outbound')),
    metadata text NOT NULL,
    media_id integer NULL,
    status varchar(128) NOT NULL,
    is_read smallint NOT NULL DEFAULT 0,
    deleted_by integer NULL,
    deleted_at timestamp(0) NULL,
    created_at timestamp(0) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp(0) NULL,
    CONSTRAINT chats_uuid_unique UNIQUE (uuid),
    CONSTRAINT chats_contact_id_foreign FOREIGN KEY (contact_id) REFERENCES contacts (id) ON DELETE CASCADE,
    CONSTRAINT chats_whatsapp_session_id_foreign FOREIGN KEY (whatsapp_session_id)
        REFERENCES whatsapp_sessions (id) ON DELETE SET NULL
);
CREATE INDEX chats_workspace_id_index ON chats (workspace_id);
CREATE INDEX chats_whatsapp_session_id_index ON chats (whatsapp_session_id);
CREATE INDEX chats_contact_id_index ON chats (contact_id);
CREATE INDEX chats_wam_id_index ON chats (wam_id);

CREATE TABLE templates (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    meta_id varchar(128) NOT NULL,
    name varchar(128) NOT NULL,
    category varchar(128) NOT NULL,
    language varchar(128) NOT NULL,
    metadata text NOT NULL,
    status varchar(128) NOT NULL,
    created_by integer NOT NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    CONSTRAINT templates_uuid_unique UNIQUE (uuid)
);
CREATE INDEX templates_workspace_id_index ON templates (workspace_id);

CREATE TABLE campaigns (
    id bigserial PRIMARY KEY,
    uuid varchar(50) NOT NULL,
    workspace_id bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name varchar(128) NOT NULL,
    template_id bigint NULL REFERENCES templates (id) ON DELETE SET NULL,
    contact_group_id bigint NULL REFERENCES contact_groups (id) ON DELETE SET NULL,
    metadata text NULL,
    status varchar(128) NOT NULL DEFAULT 'pending',
    scheduled_at timestamp(0) NULL,
    created_by integer NOT NULL,
    deleted_by integer NULL,
    created_at timestamp(0) NULL,
    updated_at timestamp(0) NULL,
    deleted_at timestamp(0) NULL,
    CONSTRAINT campaigns_uuid_unique UNIQUE (uuid)
);
CREATE INDEX campaigns_workspace_id_index ON campaigns (workspace_id);

CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue varchar(255) NOT NULL,
    payload text NOT NULL,
    attempts smallint NOT NULL,
    reserved_at integer NULL,
    available_at integer NOT NULL,
    created_at integer NOT NULL
);
CREATE INDEX jobs_queue_index ON jobs (queue);

CREATE TABLE failed_jobs (
    id bigserial PRIMARY KEY,
    uuid varchar(255) NOT NULL,
    connection text NOT NULL,
    queue text NOT NULL,
    payload text NOT NULL,
    exception text NOT NULL,
    failed_at timestamp(0) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT failed_jobs_uuid_unique UNIQUE (uuid)
);

CREATE TABLE migrations (
    id serial PRIMARY KEY,
    migration varchar(255) NOT NULL,
    batch integer NOT NULL
);
