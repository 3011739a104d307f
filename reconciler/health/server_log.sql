-- The tail of the server's current log file: pglogical writes an apply
-- worker's error only there. At most %(tail)s bytes from the end, as bytes:
-- the log holds every database's lines, in any encoding (the client decodes
-- and drops the first, partial line). pg_current_logfile, pg_stat_file and
-- pg_read_binary_file are superuser-only unless granted: `allowed` says
-- whether this role may call them, and nothing is read when it may not (a
-- refused call would fail the whole reading). The current log file always
-- lies in log_directory, which the functions accept without
-- pg_read_server_files. No file: the logging collector is off.
WITH access AS (
    SELECT has_function_privilege('pg_catalog.pg_current_logfile()', 'EXECUTE')
           AND has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
           AND has_function_privilege(
               'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE') AS allowed
), file AS (
    SELECT a.allowed, CASE WHEN a.allowed THEN pg_current_logfile() END AS logfile
      FROM access a
)
SELECT f.allowed,
       f.logfile,
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
