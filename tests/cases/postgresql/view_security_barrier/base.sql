CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE VIEW v AS SELECT id, a FROM t WHERE a > 0;
