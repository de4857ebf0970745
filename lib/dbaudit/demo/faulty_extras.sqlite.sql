-- DELIBERATELY FAULTY: run after webjs_migration.sqlite.sql, this makes the migration "done wrong".
-- Three mistakes an audit must catch:
--   1. an unplanned column, chats.legacy_provider (chats ends with 19 columns, not 18);
--   2. data loss: it deletes every contact whose id is a multiple of 10, and the ON DELETE CASCADE
--      from contacts takes those contacts' chats with them (needs PRAGMA foreign_keys = ON);
--   3. a lost index: whatsapp_sessions_status_index is dropped.

-- Mistake 1: left over from an abandoned draft of the migration.
ALTER TABLE chats ADD COLUMN legacy_provider varchar(20);

-- Mistake 2: a "duplicate contacts cleanup" run against the wrong condition.
DELETE FROM contacts WHERE id % 10 = 0;

-- Mistake 3: dropped while "tidying" indexes, though session health checks filter on status.
DROP INDEX whatsapp_sessions_status_index;
