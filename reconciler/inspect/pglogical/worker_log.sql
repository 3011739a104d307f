-- The tail of the server's current log file, only when an enabled
-- subscription of this database has no apply worker (no row otherwise):
-- pglogical writes why a worker failed only there, and how long ago it
-- failed decides whether the plan restarts it. As in health/server_log.sql:
-- at most %(tail)s bytes, as bytes (decoded by the client), and nothing read
-- unless this role may call the three functions (a refused call would fail
-- the whole batch). clock_timestamp() is what the log's times compare with.
SELECT clock_timestamp(),
       current_setting('log_timezone'),
       CASE WHEN f.logfile IS NOT NULL
            THEN pg_read_binary_file(
                     f.logfile,
                     greatest(0, coalesce((pg_stat_file(f.logfile, true)).size, 0) - %(tail)s),
                     %(tail)s,
                     true)
       END
  FROM (SELECT CASE WHEN has_function_privilege('pg_catalog.pg_current_logfile()', 'EXECUTE')
                     AND has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
                     AND has_function_privilege(
                         'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE')
                    THEN pg_current_logfile() END AS logfile) AS f
 WHERE EXISTS (SELECT FROM pglogical.subscription s
                WHERE s.sub_enabled
                  AND NOT EXISTS (
                      SELECT FROM pg_stat_activity a
                       WHERE a.backend_type = 'pglogical apply '
                             || (SELECT oid FROM pg_database WHERE datname = current_database())
                             || ':' || s.sub_id))
