-- Which of the named replication sets the local node (a provider) has.
SELECT s.set_name
FROM pglogical.replication_set s
JOIN pglogical.local_node l ON l.node_id = s.set_nodeid
WHERE s.set_name = ANY (%(sets)s)
ORDER BY s.set_name
