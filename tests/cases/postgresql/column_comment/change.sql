COMMENT ON COLUMN t.a IS 'the a';
