ALTER DEFINER=`dbaudit_nobody`@`localhost` EVENT e ENABLE;
