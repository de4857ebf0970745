DROP INDEX ie; CREATE INDEX ie ON t (upper(b));
