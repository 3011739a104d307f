-- Every pglogical slot of this database with what it costs the provider.
-- retained_bytes: WAL the slot keeps from being removed (restart_lsn; NULL
-- once PostgreSQL invalidated the slot, wal_status 'lost'). lag_bytes: WAL
-- the subscriber has not confirmed (confirmed_flush_lsn). A table sync in
-- progress holds a temporary '<slot>_%%08x' slot (pglogical_sync.c): it is
-- reported under its edge, never as an orphan.
WITH expected AS (
    SELECT e.slot, e.subscription
      FROM jsonb_to_recordset(%(expected)s::jsonb) AS e(slot text, subscription text)
)
SELECT s.slot_name::text AS slot,
       x.subscription,
       s.active,
       s.wal_status,
       s.safe_wal_size,
       CASE WHEN s.restart_lsn IS NOT NULL
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint END AS retained_bytes,
       CASE WHEN s.confirmed_flush_lsn IS NOT NULL
            THEN greatest(0, pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn))::bigint
       END AS lag_bytes
  FROM pg_replication_slots s
  LEFT JOIN expected x
    ON s.slot_name::text = x.slot
    OR (left(s.slot_name::text, length(x.slot) + 1) = x.slot || '_'
        AND substr(s.slot_name::text, length(x.slot) + 2) ~ '^[0-9a-f]{8}$')
 WHERE s.plugin = ANY (%(plugins)s)
   AND s.database = current_database()
   -- A native table-sync slot (pg_<subid>_sync_<relid>_<sysid>) lives only
   -- while a subscriber copies a table: never an orphan.
   AND s.slot_name::text !~ '^pg_[0-9]+_sync_[0-9]+_[0-9]+$'
 ORDER BY s.slot_name
