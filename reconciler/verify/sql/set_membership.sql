-- The pglogical sets that hold the table at this node, each with its column
-- list and its row filter as pglogical reads it back (pg_get_expr), so the
-- table can be added again exactly as it was.
SELECT s.set_name::text, t.set_att_list::text[], pg_catalog.pg_get_expr(t.set_row_filter, t.set_reloid)
FROM pglogical.replication_set_table AS t
JOIN pglogical.replication_set AS s ON s.set_id = t.set_id
WHERE t.set_reloid = pg_catalog.to_regclass(%(table)s)
  AND s.set_nodeid = (SELECT node_id FROM pglogical.local_node)
ORDER BY s.set_name
