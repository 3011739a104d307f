-- The end of what this node has written so far (the repair's commits included).
SELECT pg_catalog.pg_current_wal_insert_lsn()::text
