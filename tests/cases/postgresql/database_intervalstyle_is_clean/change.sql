ALTER DATABASE :"DBNAME" SET IntervalStyle = 'sql_standard';
