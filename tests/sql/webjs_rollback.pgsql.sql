-- The rollback of webjs_migration.pgsql.sql, as `php artisan migrate:rollback --step=2` runs the down()
-- methods on PostgreSQL: the newest first, every object the migration added dropped again.

-- Part 2, down: the chat-list indexes.
DROP INDEX idx_chats_provider_type;
DROP INDEX idx_chats_chat_type;
DROP INDEX idx_chats_type_session;
DROP INDEX idx_chats_provider_session;
DROP INDEX idx_chats_contact_chat;
DROP INDEX idx_chats_group_chat;
DROP INDEX idx_chats_workspace_session_created;

-- Part 1, down: group chats (the key before the table it points at).
ALTER TABLE chats DROP CONSTRAINT fk_chats_group_id;
ALTER TABLE chats DROP COLUMN group_id;
ALTER TABLE chats DROP COLUMN chat_type;
ALTER TABLE chats DROP COLUMN provider_type;
DROP TABLE whatsapp_groups;
