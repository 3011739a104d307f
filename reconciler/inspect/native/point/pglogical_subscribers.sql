-- Slots of this database that pglogical subscribers stream from (pglogical's output plugin).
SELECT s.slot_name::text AS slot_name
  FROM pg_replication_slots s
 WHERE s.database = current_database() AND s.plugin = 'pglogical_output'
 ORDER BY 1
