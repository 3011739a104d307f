-- Each pglogical subscription of this database with what tells whether it
-- runs: its apply worker (pg_stat_activity's backend_type is
-- "pglogical apply <database oid>:<sub_id>", the name the server log gives
-- it too) and its tables whose sync is not 'r' (ready), with their state.
SELECT s.sub_name::text AS subscription,
       s.sub_id::bigint AS subscription_id,
       d.oid::bigint AS database_oid,
       s.sub_enabled AS enabled,
       EXISTS (SELECT FROM pg_stat_activity a
                WHERE a.backend_type = format('pglogical apply %s:%s', d.oid, s.sub_id)) AS worker_running,
       ARRAY(SELECT format('%s.%s (%s)', y.sync_nspname, y.sync_relname, y.sync_status::text)
               FROM pglogical.local_sync_status y
              WHERE y.sync_subid = s.sub_id AND y.sync_nspname IS NOT NULL AND y.sync_status <> 'r'
             UNION ALL
             -- The initial copy keeps no per-table state until it ends: its
             -- backend (application_name "<subscription>_copy") says which
             -- table it is copying and whether it waits for a lock.
             SELECT format('the initial copy of sets %s (%s)%s', s.sub_replication_sets, y.sync_status::text,
                           coalesce((SELECT format(', copying %s%s',
                                                   replace(substring(a.query from '^COPY ("[^"]+"\."[^"]+")'),
                                                           '"', ''),
                                                   CASE WHEN a.wait_event_type = 'Lock'
                                                        THEN ', waiting for a lock' ELSE '' END)
                                       FROM pg_stat_activity a
                                      WHERE a.datname = current_database()
                                        AND a.application_name = left(s.sub_name || '_copy', 63)
                                      LIMIT 1), ''))
               FROM pglogical.local_sync_status y
              WHERE y.sync_subid = s.sub_id AND y.sync_nspname IS NULL AND y.sync_status <> 'r'
              ORDER BY 1) AS tables_not_ready
  FROM pglogical.subscription s
 CROSS JOIN (SELECT oid FROM pg_database WHERE datname = current_database()) AS d
 ORDER BY 1
