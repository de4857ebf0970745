CREATE OR REPLACE DEFINER=`dbaudit_nobody`@`localhost` VIEW v AS SELECT id, a FROM t WHERE a > 0;
