CREATE TABLE t (id int PRIMARY KEY, a int, b int, KEY iab (a, b));
