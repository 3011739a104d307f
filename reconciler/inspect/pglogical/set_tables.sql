-- Tables of every replication set with column list and row filter. The
-- schema and name come from pg_identify_object (a cache lookup), never
-- regclass::text, which drops the schema when it is on the search_path.
-- pg_get_expr gives the filter in PostgreSQL's normalised text
-- (set_row_filter is a node tree whose text form carries parse offsets and OIDs).
SELECT t.set_id, o.schema, o.name, t.set_att_list::text[], pg_get_expr(t.set_row_filter, t.set_reloid)
  FROM pglogical.replication_set_table t,
       pg_identify_object('pg_class'::regclass, t.set_reloid, 0) AS o
