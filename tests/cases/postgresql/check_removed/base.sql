CREATE TABLE t (id int PRIMARY KEY, a int, b text, CONSTRAINT a_pos CHECK (a > 0));
