-- A temporary copy of the slot that decodes with test_decoding: it starts
-- exactly where the original stands (restart_lsn, confirmed_flush_lsn) and
-- vanishes with the session, so the original is never moved.
SELECT pg_copy_logical_replication_slot(%(slot)s, %(probe)s, true, 'test_decoding')
