ALTER TABLE t COMMENT 'who owns this';
