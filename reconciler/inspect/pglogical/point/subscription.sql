-- One subscription held by this node, with the provider interface it uses.
-- pglogical stores forward_origins '{}' as NULL: read it back as '{}'.
SELECT s.sub_name, n.node_name AS provider_node, i.if_name, i.if_dsn AS provider_dsn,
       s.sub_enabled, s.sub_slot_name, coalesce(s.sub_replication_sets, '{}') AS replication_sets,
       coalesce(s.sub_forward_origins, '{}') AS forward_origins
FROM pglogical.subscription s
JOIN pglogical.node n ON n.node_id = s.sub_origin
JOIN pglogical.node_interface i ON i.if_id = s.sub_origin_if
WHERE s.sub_name = %(name)s
