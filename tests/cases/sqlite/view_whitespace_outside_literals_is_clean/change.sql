DROP VIEW v; CREATE VIEW v AS
  SELECT   'a b'   AS x
  FROM t;
