ALTER TABLE t DROP INDEX ia, ADD INDEX ia (a) COMMENT 'for reports';
