COMMENT ON TABLE t IS 'who owns this';
