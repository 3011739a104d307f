-- Have this database's logical slots confirmed %(target)s? True when it has
-- none. Not pglogical.wait_slot_confirm_lsn(NULL, NULL): that one looks at
-- every slot of the server, and with no slot at all it waits forever.
SELECT COALESCE(pg_catalog.bool_and(s.confirmed_flush_lsn >= %(target)s::pg_lsn), true)
FROM pg_catalog.pg_replication_slots AS s
WHERE s.database = pg_catalog.current_database() AND s.slot_type = 'logical'
