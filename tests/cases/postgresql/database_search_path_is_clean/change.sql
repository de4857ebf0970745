ALTER DATABASE :"DBNAME" SET search_path = pg_catalog;
