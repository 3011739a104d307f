-- Whether the named native subscription of this database has its apply
-- worker running (pg_stat_subscription: the row without relid is the apply
-- worker; a table-sync worker has one).
SELECT EXISTS (
    SELECT FROM pg_subscription s
      JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL
     WHERE s.subname = %(name)s
       AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
) AS running
