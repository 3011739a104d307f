-- Every declared table: does it exist, its columns (type, NOT NULL) in
-- column order, its primary key columns in key order, its replica identity.
SELECT coalesce(jsonb_object_agg(d.name, CASE WHEN c.oid IS NULL
    THEN jsonb_build_object('exists', false)
    ELSE jsonb_build_object(
        'exists', true,
        'replica_identity', c.relreplident::text,
        -- Does it hold any row? A new subscription must not COPY onto rows
        -- already there (duplicate keys fail the sync for good). query_to_xml
        -- runs the probe for a table named in data, within this one query.
        'has_rows', (xpath('/row/x/text()', query_to_xml(
            format('SELECT EXISTS (SELECT FROM %I.%I) AS x', d.schema, d."table"), false, true, '')))[1]::text::boolean,
        'columns', (
            SELECT coalesce(jsonb_agg(jsonb_build_array(
                       a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull)
                       ORDER BY a.attnum), '[]')
              FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        ),
        'primary_key', (
            SELECT coalesce(jsonb_agg(jsonb_build_array(
                       a.attname::text, format_type(a.atttypid, a.atttypmod))
                       ORDER BY k.position), '[]')
              FROM pg_index i
              CROSS JOIN LATERAL unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, position)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary
        )
    ) END), '{}') AS tables
FROM jsonb_to_recordset(current_setting('reconcile.inspect_input')::jsonb -> 'tables')
     AS d(name text, schema text, "table" text)
LEFT JOIN pg_namespace n ON n.nspname = d.schema
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = d."table" AND c.relkind IN ('r', 'p')
