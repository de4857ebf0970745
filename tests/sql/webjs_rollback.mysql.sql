-- The rollback of webjs_migration.mysql.sql (both parts), as `php artisan migrate:rollback --step=2` runs
-- the migrations' down() methods: the newest first, every object the migration added dropped again.
--
-- The foreign key goes first: InnoDB keeps idx_chats_group_chat as the index fk_chats_group_id needs, and
-- refuses to drop it while the key exists. whatsapp_groups goes last (chats referenced it).

ALTER TABLE chats DROP FOREIGN KEY fk_chats_group_id;

-- Part 2, down: the chat-list indexes.
DROP INDEX idx_chats_provider_type ON chats;
DROP INDEX idx_chats_chat_type ON chats;
DROP INDEX idx_chats_type_session ON chats;
DROP INDEX idx_chats_provider_session ON chats;
DROP INDEX idx_chats_contact_chat ON chats;
DROP INDEX idx_chats_group_chat ON chats;
DROP INDEX idx_chats_workspace_session_created ON chats;

-- Part 1, down: group chats.
ALTER TABLE chats
    DROP COLUMN group_id,
    DROP COLUMN chat_type,
    DROP COLUMN provider_type;
DROP TABLE whatsapp_groups;
