-- This database's pglogical node and the DSN of its local interface (no row: no node yet).
SELECT n.node_id, n.node_name, i.if_id, i.if_name, i.if_dsn
FROM pglogical.local_node l
JOIN pglogical.node n ON n.node_id = l.node_id
JOIN pglogical.node_interface i ON i.if_id = l.node_local_interface
