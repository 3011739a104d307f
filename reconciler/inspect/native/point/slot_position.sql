-- A slot of this server: whether a walsender holds it and what its subscriber confirmed.
SELECT s.active, s.confirmed_flush_lsn::text AS confirmed_flush_lsn
  FROM pg_replication_slots s
 WHERE s.slot_name = %(slot)s
