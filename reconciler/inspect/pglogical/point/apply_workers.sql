-- The named subscriptions whose apply worker is still running in this database.
-- pglogical names each apply worker "pglogical apply <database oid>:<subscription id>",
-- and PostgreSQL shows that name as the worker's backend_type.
SELECT s.sub_name
FROM pglogical.subscription s
JOIN pg_stat_activity a
  ON a.backend_type = 'pglogical apply ' || (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
     || ':' || s.sub_id
WHERE s.sub_name = ANY (%(names)s)
ORDER BY s.sub_name
