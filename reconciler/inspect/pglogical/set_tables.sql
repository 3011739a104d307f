-- Tables of every replication set with column list and row filter. Names
-- are pg_namespace.nspname and pg_class.relname as they are (unquoted, as
-- declared names are), never regclass::text, which drops the schema when it
-- is on the search_path and quotes keywords. pg_get_expr gives the filter in
-- PostgreSQL's normalised text (set_row_filter is a node tree whose text
-- form carries parse offsets and OIDs).
SELECT t.set_id, ns.nspname::text, c.relname::text, t.set_att_list::text[],
       pg_get_expr(t.set_row_filter, t.set_reloid)
  FROM pglogical.replication_set_table t
  JOIN pg_class c ON c.oid = t.set_reloid
  JOIN pg_namespace ns ON ns.oid = c.relnamespace
