-- The local pglogical node and the DSN of its local interface (NULL: no node yet).
SELECT jsonb_build_object('node_name', n.node_name::text, 'dsn', i.if_dsn)
  FROM pglogical.local_node l
  JOIN pglogical.node n ON n.node_id = l.node_id
  JOIN pglogical.node_interface i ON i.if_id = l.node_local_interface
