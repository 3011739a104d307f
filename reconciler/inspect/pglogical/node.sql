-- pglogical's nodes and their interfaces, read as they are (the client joins
-- them): which node is local, every node's name, every interface's DSN.
-- Reading whole small catalogs costs a new backend less than planning joins.
SELECT 'local' AS kind, node_id, node_local_interface AS ref, NULL::text AS text FROM pglogical.local_node
UNION ALL
SELECT 'node', node_id, NULL, node_name::text FROM pglogical.node
UNION ALL
SELECT 'interface', if_id, if_nodeid, if_dsn FROM pglogical.node_interface
