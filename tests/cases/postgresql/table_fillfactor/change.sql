ALTER TABLE t SET (fillfactor = 70);
