CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE TYPE mood AS ENUM ('sad', 'ok');
