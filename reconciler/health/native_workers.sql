-- Each native subscription of this database: whether its apply worker runs,
-- its error counts (pg_stat_subscription_stats, PostgreSQL 15: apply and
-- table-sync errors since the last reset), and its tables not yet 'r'
-- (ready) with their state, and whether their copy waits for a lock.
SELECT s.subname::text AS subscription,
       s.oid::bigint AS subscription_id,
       s.subenabled AS enabled,
       EXISTS (SELECT FROM pg_stat_subscription w
                WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) AS worker_running,
       st.apply_error_count AS apply_errors,
       st.sync_error_count AS sync_errors,
       ARRAY(SELECT format('%s (%s)%s', r.srrelid::regclass::text, r.srsubstate::text,
                           CASE WHEN EXISTS (SELECT FROM pg_stat_subscription w
                                               JOIN pg_stat_activity a ON a.pid = w.pid
                                              WHERE w.subid = s.oid AND w.relid = r.srrelid
                                                AND a.wait_event_type = 'Lock')
                                THEN ', waiting for a lock' ELSE '' END)
               FROM pg_subscription_rel r
              WHERE r.srsubid = s.oid AND r.srsubstate <> 'r'
              ORDER BY 1) AS tables_not_ready
  FROM pg_subscription s
  LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid
 WHERE s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
 ORDER BY 1
