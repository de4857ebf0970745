SELECT nextval('s') FROM generate_series(1, 20);
