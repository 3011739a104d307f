-- The tail of the server's current log file: pglogical writes why a worker
-- failed only there, and how long ago it failed decides whether the plan
-- restarts it. A second round trip, asked only when an enabled subscription
-- of this database has no apply worker and server.sql said this role may
-- call the three functions (PostgreSQL checks EXECUTE on every function of a
-- statement when it starts, even behind a CASE never taken: a refused call
-- would fail the whole batch). As in health/server_log.sql: at most %(tail)s
-- bytes, as bytes (decoded by the client). clock_timestamp() is what the
-- log's times compare with.
SELECT clock_timestamp(),
       current_setting('log_timezone'),
       CASE WHEN f.logfile IS NOT NULL
            THEN pg_read_binary_file(
                     f.logfile,
                     greatest(0, coalesce((pg_stat_file(f.logfile, true)).size, 0) - %(tail)s),
                     %(tail)s,
                     true)
       END
  FROM (SELECT pg_current_logfile() AS logfile) AS f
