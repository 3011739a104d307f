-- Versions of this node and whether pglogical is installed in its database.
-- Nothing here needs the pglogical schema, so it runs on any database.
SELECT current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'pglogical') AS pglogical_version
