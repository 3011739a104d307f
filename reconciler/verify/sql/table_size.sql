SELECT pg_catalog.pg_table_size(pg_catalog.to_regclass(%(table)s))
