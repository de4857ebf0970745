CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE TABLE c (id int PRIMARY KEY, t_id int, CONSTRAINT c_t FOREIGN KEY (t_id) REFERENCES t (id));
