ALTER POLICY own ON t TO pg_monitor;
