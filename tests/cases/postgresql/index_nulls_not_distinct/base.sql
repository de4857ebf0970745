CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE UNIQUE INDEX ua ON t (a);
