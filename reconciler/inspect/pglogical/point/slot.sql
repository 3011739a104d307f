-- One replication slot of this server, by name, whether it belongs to this database, and
-- whether it still holds its WAL (wal_status 'lost': invalidated by max_slot_wal_keep_size).
SELECT slot_name, database, database = current_database() AS here, active, active_pid, wal_status
FROM pg_replication_slots
WHERE slot_name = %(slot)s
