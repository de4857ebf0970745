ALTER DATABASE :"DBNAME" SET timezone = 'Pacific/Kiritimati';
