CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(20));
CREATE VIEW v AS SELECT id, a FROM t WHERE a > 0;
