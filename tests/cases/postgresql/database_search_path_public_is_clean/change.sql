ALTER DATABASE :"DBNAME" SET search_path = "$user", public;
