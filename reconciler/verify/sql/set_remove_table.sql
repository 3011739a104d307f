-- Out of one set for the length of the transaction that deletes a moved node's rows.
SELECT pglogical.replication_set_remove_table(%(set)s, pg_catalog.to_regclass(%(table)s))
