-- Whether LSN a is at or past LSN b (compared as pg_lsn, not as text).
SELECT %(a)s::pg_lsn >= %(b)s::pg_lsn AS reached
