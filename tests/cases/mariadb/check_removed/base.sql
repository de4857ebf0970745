CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(20), CONSTRAINT a_pos CHECK (a > 0));
