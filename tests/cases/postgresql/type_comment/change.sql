COMMENT ON TYPE mood IS 'how it went';
