CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE INDEX ia ON t (a);
