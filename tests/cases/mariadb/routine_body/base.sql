CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(20));
CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2;
