-- Drop the temporary copy at once: it holds a slot and catalog_xmin.
SELECT pg_drop_replication_slot(%(probe)s)
