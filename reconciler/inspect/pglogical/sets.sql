-- Replication sets of the local node with their replicate_* flags.
SELECT s.set_id, s.set_name::text,
       s.replicate_insert, s.replicate_update, s.replicate_delete, s.replicate_truncate
  FROM pglogical.replication_set s
  JOIN pglogical.local_node l ON l.node_id = s.set_nodeid
