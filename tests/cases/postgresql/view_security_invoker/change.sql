ALTER VIEW v SET (security_invoker = true);
