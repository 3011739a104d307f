-- Publications of this database (the native engine's replication sets): the
-- operations they publish, their tables with column list (NULL = all
-- columns) and row filter, and their schemas. pg_get_expr gives the filter
-- in PostgreSQL's normalised text, as it does for a CHECK constraint (the
-- probe). FOR ALL TABLES and TABLES IN SCHEMA publications are reported as
-- such, never as if they listed no table.
SELECT coalesce(jsonb_agg(jsonb_build_object(
           'name', p.pubname::text,
           'all_tables', p.puballtables,
           'replicate_insert', p.pubinsert,
           'replicate_update', p.pubupdate,
           'replicate_delete', p.pubdelete,
           'replicate_truncate', p.pubtruncate,
           'tables', (
               SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'table', format('%s.%s', ns.nspname, c.relname),
                          'columns', (
                              SELECT jsonb_agg(a.attname::text ORDER BY a.attname)
                                FROM pg_attribute a
                               WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs::smallint[])),
                          'row_filter', pg_get_expr(r.prqual, r.prrelid))
                          ORDER BY ns.nspname, c.relname), '[]')
                 FROM pg_publication_rel r
                 JOIN pg_class c ON c.oid = r.prrelid
                 JOIN pg_namespace ns ON ns.oid = c.relnamespace
                WHERE r.prpubid = p.oid),
           'schemas', (
               SELECT coalesce(jsonb_agg(ns.nspname::text ORDER BY ns.nspname), '[]')
                 FROM pg_publication_namespace pn
                 JOIN pg_namespace ns ON ns.oid = pn.pnnspid
                WHERE pn.pnpubid = p.oid))
           ORDER BY p.pubname), '[]')
  FROM pg_publication p
