-- May this role read the server log? pg_current_logfile, pg_stat_file and
-- pg_read_binary_file are superuser-only unless granted, and PostgreSQL
-- checks EXECUTE on every function of a statement when it starts, even one
-- behind a CASE that is never taken: so this is asked on its own, and
-- server_log.sql runs only when the answer is yes (a refused call would fail
-- the whole reading of the node).
SELECT has_function_privilege('pg_catalog.pg_current_logfile()', 'EXECUTE')
       AND has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
       AND has_function_privilege(
           'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE') AS allowed,
       clock_timestamp() AS read_at
