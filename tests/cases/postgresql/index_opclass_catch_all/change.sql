DROP INDEX ib; CREATE INDEX ib ON t (b text_pattern_ops);
