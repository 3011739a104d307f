-- pgoutput slots of this database (native providers) and their wal_status.
-- Table-sync slots included (inspect/slots.py tells them apart).
SELECT coalesce(jsonb_agg(jsonb_build_object(
           'slot', s.slot_name::text,
           'wal_status', coalesce(s.wal_status, 'unknown'))
           ORDER BY s.slot_name), '[]')
  FROM pg_replication_slots s
 WHERE s.plugin = 'pgoutput' AND s.database = current_database()
