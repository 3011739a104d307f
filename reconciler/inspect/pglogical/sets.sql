-- Replication sets of the local node with their replicate_* flags and tables.
-- Table names are built from pg_namespace/pg_class, never regclass::text,
-- which drops the schema when it is on the search_path. pg_get_expr gives the
-- filter in PostgreSQL's normalised text (set_row_filter is a node tree whose
-- text form carries parse offsets and OIDs).
SELECT coalesce(jsonb_agg(jsonb_build_object(
           'name', s.set_name::text,
           'replicate_insert', s.replicate_insert,
           'replicate_update', s.replicate_update,
           'replicate_delete', s.replicate_delete,
           'replicate_truncate', s.replicate_truncate,
           'tables', (
               SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'table', format('%s.%s', ns.nspname, c.relname),
                          'columns', to_jsonb(t.set_att_list),
                          'row_filter', pg_get_expr(t.set_row_filter, t.set_reloid))
                          ORDER BY ns.nspname, c.relname), '[]')
                 FROM pglogical.replication_set_table t
                 JOIN pg_class c ON c.oid = t.set_reloid
                 JOIN pg_namespace ns ON ns.oid = c.relnamespace
                WHERE t.set_id = s.set_id
           ))
           ORDER BY s.set_name), '[]')
  FROM pglogical.replication_set s
  JOIN pglogical.local_node l ON l.node_id = s.set_nodeid
