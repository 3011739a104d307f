-- The tail of the server's current log file: pglogical writes an apply
-- worker's error only there; plan (inspect/read.py, a second round trip when
-- an enabled subscription has no worker) and status (health/reader.py) both
-- read it with this one statement. At most %(tail)s bytes from the end, as
-- bytes: the log holds every database's lines, in any encoding (the client
-- decodes and drops the first, partial line); read_at, the server's clock,
-- is what the log's times compare with. Run only when the role may call the
-- three functions (server.sql's log_readable, health/server_log_access.sql):
-- PostgreSQL checks EXECUTE on every function of a statement when it
-- starts, even behind a CASE never taken. The current log file always lies
-- in log_directory, which the functions accept without
-- pg_read_server_files. No file: the logging collector is off.
WITH file AS (
    SELECT pg_current_logfile() AS logfile
)
SELECT f.logfile,
       current_setting('logging_collector') AS logging_collector,
       current_setting('log_timezone') AS log_timezone,
       clock_timestamp() AS read_at,
       CASE WHEN f.logfile IS NOT NULL
            THEN pg_read_binary_file(
                     f.logfile,
                     greatest(0, coalesce((pg_stat_file(f.logfile, true)).size, 0) - %(tail)s),
                     %(tail)s,
                     true)
       END AS tail
  FROM file f
