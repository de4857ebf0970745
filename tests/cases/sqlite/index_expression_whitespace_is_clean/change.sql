DROP INDEX ie; CREATE INDEX ie ON t (  lower(b)  );
