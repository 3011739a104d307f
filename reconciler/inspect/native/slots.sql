-- pgoutput slots of this database (native providers) and their wal_status.
-- A table-sync slot (pg_<subid>_sync_<relid>_<sysid>) lives only while a
-- subscriber copies a table: reported, so it is never taken for an orphan.
SELECT coalesce(jsonb_agg(jsonb_build_object(
           'slot', s.slot_name::text,
           'wal_status', coalesce(s.wal_status, 'unknown'),
           'sync', s.slot_name::text ~ '^pg_[0-9]+_sync_[0-9]+_[0-9]+$')
           ORDER BY s.slot_name), '[]')
  FROM pg_replication_slots s
 WHERE s.plugin = 'pgoutput' AND s.database = current_database()
