ALTER VIEW v SET (security_barrier = true);
