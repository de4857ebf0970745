ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';
