ALTER DATABASE :"DBNAME" SET bytea_output = 'escape';
