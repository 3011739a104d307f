-- How many pglogical apply workers still run in this database
-- (pglogical names them "pglogical apply <database oid>:<subscription id>").
SELECT count(*)
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type LIKE 'pglogical apply %'
