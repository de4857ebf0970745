SELECT setval('s', 5000);
