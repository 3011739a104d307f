-- End every other session connected to one database (pglogical managers,
-- apply workers, walsenders of logical slots included).
SELECT pg_catalog.pg_terminate_backend(pid)
FROM pg_catalog.pg_stat_activity
WHERE datname = %(dbname)s
  AND pid <> pg_catalog.pg_backend_pid()
