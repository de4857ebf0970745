DROP FUNCTION twice;
CREATE DEFINER=`dbaudit_nobody`@`localhost` FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2;
