CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE EXTENSION pg_trgm VERSION '1.5';
