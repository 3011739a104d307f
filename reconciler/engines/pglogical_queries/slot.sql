-- One replication slot of this server, by name, and whether it belongs to this database.
SELECT slot_name, database, database = current_database() AS here, active, active_pid
FROM pg_replication_slots
WHERE slot_name = %(slot)s
