-- Versions of this node and whether pglogical is installed in its database.
-- Nothing here needs the pglogical schema, so it runs on any database.
SELECT current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'pglogical') AS pglogical_version,
       -- End-to-end freshness (monitoring: heartbeat): every beat this node holds, as JSON
       -- {node: age in seconds by this server's clock}; NULL without the table or the right to
       -- read it (query_to_xml runs its query only then, so this never fails).
       CASE WHEN has_table_privilege(to_regclass('reconcile.heartbeat'), 'SELECT') THEN
         (xpath('/row/b/text()', query_to_xml(
           'SELECT coalesce(json_object_agg(node, extract(epoch FROM now() - beat_at)), ''{}'')::text AS b'
           ' FROM reconcile.heartbeat', false, true, '')))[1]::text
       END AS heartbeats
