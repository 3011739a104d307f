-- One table's membership in one local set: column list (NULL = all) and the
-- filter as PostgreSQL's normalised text (pg_get_expr, never set_row_filter::text).
SELECT t.set_att_list, pg_get_expr(t.set_row_filter, t.set_reloid) AS row_filter
FROM pglogical.replication_set_table t
JOIN pglogical.replication_set s ON s.set_id = t.set_id
JOIN pglogical.local_node l ON l.node_id = s.set_nodeid
WHERE s.set_name = %(set_name)s
  AND t.set_reloid = %(table)s::regclass
