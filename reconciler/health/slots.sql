-- Every replication slot of this database (of the engines' output plugins) with what it costs the provider.
-- retained_bytes: WAL the slot keeps from being removed (restart_lsn; NULL
-- once PostgreSQL invalidated the slot, wal_status 'lost'). lag_bytes: WAL
-- the subscriber has not confirmed (confirmed_flush_lsn). Which edge each
-- slot serves (table syncs included) is inspect/slots.py's rule.
SELECT s.slot_name::text AS slot,
       s.active,
       s.wal_status,
       s.safe_wal_size,
       CASE WHEN s.restart_lsn IS NOT NULL
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint END AS retained_bytes,
       CASE WHEN s.confirmed_flush_lsn IS NOT NULL
            THEN greatest(0, pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn))::bigint
       END AS lag_bytes
  FROM pg_replication_slots s
 WHERE s.plugin = ANY (%(plugins)s)
   AND s.database = current_database()
 ORDER BY s.slot_name
