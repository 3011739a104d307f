-- Every interface of one node record (local or a provider's), by name.
SELECT i.if_id, i.if_name, i.if_dsn,
       EXISTS (SELECT 1 FROM pglogical.local_node l WHERE l.node_id = n.node_id) AS is_local,
       (SELECT count(*) FROM pglogical.subscription s WHERE s.sub_origin = n.node_id) AS subscriptions
FROM pglogical.node n
JOIN pglogical.node_interface i ON i.if_nodeid = n.node_id
WHERE n.node_name = %(node)s
ORDER BY i.if_name
