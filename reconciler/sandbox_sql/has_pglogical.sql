-- Whether the pglogical extension is installed in this database.
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pglogical')
