-- What one backend waits for (DROP DATABASE waits on 'ProcSignalBarrier').
SELECT wait_event
FROM pg_catalog.pg_stat_activity
WHERE pid = %(pid)s
