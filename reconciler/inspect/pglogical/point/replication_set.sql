-- One replication set of the local node, by name.
SELECT s.set_name, s.replicate_insert, s.replicate_update, s.replicate_delete, s.replicate_truncate
FROM pglogical.replication_set s
JOIN pglogical.local_node l ON l.node_id = s.set_nodeid
WHERE s.set_name = %(set_name)s
