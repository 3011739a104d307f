-- Logical replication slots that belong to one database (they block DROP DATABASE).
SELECT slot_name, active_pid
FROM pg_catalog.pg_replication_slots
WHERE database = %(dbname)s
ORDER BY slot_name
