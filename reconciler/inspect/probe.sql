-- Normalises every desired row filter handed in (input.sql) on this node.
--
-- Row filters are parsed like CHECK constraints (pglogical's parse_row_filter
-- uses EXPR_KIND_CHECK_CONSTRAINT with the table as the only range-table
-- entry), so pg_get_expr of a NOT VALID CHECK on a temporary copy of the table
-- gives exactly what pg_get_expr(set_row_filter, set_reloid) gives after
-- replication_set_add_table. The caller rolls the transaction back: nothing
-- stays.
--
-- Why a DO block: in a pipeline an error makes the server skip everything up
-- to the Sync, savepoints included. A bad filter (missing column, not
-- boolean, missing table) must not lose the rest, so each probe runs in a
-- plpgsql exception block (a subtransaction).
--
-- The filter text is the tool's own re-emitted text (row_filter.filter_sql),
-- safe to splice whatever the session's standard_conforming_strings says.
-- Each regular expression of the filter is compiled here too, from the JSON
-- value (never spliced): an invalid one would raise in the provider's
-- walsender on the first row, so it becomes this filter's error instead.
-- The same goes for what a CHECK does not show because only executing it
-- raises: the filter is run once over the empty copy (executor start-up:
-- GREATEST and LEAST look up their type's ordering there, and point or json
-- have none), and the catalog is asked about what only a row raises (LIKE or
-- a regular expression on a column with a nondeterministic collation; an
-- array or composite column compared, whose elements may have no equality
-- or ordering, such as json or point).
DO $probe$
DECLARE
    input constant jsonb := current_setting('reconcile.inspect_input')::jsonb;
    probe jsonb;
    probe_table text;
    n integer := 0;
    normalised text;
    filters jsonb := '[]';
    key_column text;
    regex jsonb;
    relation regclass;
    problem text;
BEGIN
    FOR probe IN SELECT value FROM jsonb_array_elements(input -> 'filters') LOOP
        n := n + 1;
        probe_table := 'reconcile_probe_' || n;
        BEGIN
            FOR regex IN SELECT value FROM jsonb_array_elements(coalesce(probe -> 'regexes', '[]')) LOOP
                IF (regex ->> 'icase')::boolean THEN
                    PERFORM '' ~* (regex ->> 'pattern');
                ELSE
                    PERFORM '' ~ (regex ->> 'pattern');
                END IF;
            END LOOP;
            -- A partitioned copy has no storage: no file is created, nor
            -- unlinked at rollback, which is most of a plain temp table's cost.
            -- Its key is the first primary-key column (always btree-indexable);
            -- without a key, a plain temporary copy.
            relation := to_regclass(format('%I.%I', probe ->> 'schema', probe ->> 'table'));
            SELECT a.attname INTO key_column
              FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indisprimary
               AND i.indrelid = relation;
            IF key_column IS NULL THEN
                EXECUTE format('CREATE TEMP TABLE %I (LIKE %I.%I)',
                               probe_table, probe ->> 'schema', probe ->> 'table');
            ELSE
                EXECUTE format('CREATE TEMP TABLE %I (LIKE %I.%I) PARTITION BY LIST (%I)',
                               probe_table, probe ->> 'schema', probe ->> 'table', key_column);
            END IF;
            EXECUTE format('ALTER TABLE pg_temp.%I ADD CONSTRAINT reconcile_probe CHECK (%s) NOT VALID',
                           probe_table, probe ->> 'filter');
            EXECUTE format('SELECT %s FROM pg_temp.%I', probe ->> 'filter', probe_table);
            SELECT string_agg(why, '; ' ORDER BY why) INTO problem FROM (
                SELECT format('column %s has the nondeterministic collation %s: LIKE, ILIKE and regular'
                              ' expressions raise an error on it for every row', a.attname, co.collname) AS why
                  FROM pg_attribute a
                  JOIN pg_collation co ON co.oid = a.attcollation
                 WHERE a.attrelid = relation AND a.attnum > 0 AND NOT co.collisdeterministic
                   AND a.attname IN (SELECT jsonb_array_elements_text(probe -> 'pattern_columns'))
                UNION ALL
                -- typcategory: A array, C composite (a domain has its base type's).
                SELECT format('column %s is %s, an array or composite type: comparing it raises an error'
                              ' at run time when an element type has no equality or ordering (json, point);'
                              ' compare scalar columns only', a.attname, format_type(a.atttypid, a.atttypmod))
                  FROM pg_attribute a
                  JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = relation AND a.attnum > 0 AND t.typcategory IN ('A', 'C')
                   AND a.attname IN (SELECT jsonb_array_elements_text(probe -> 'compared_columns'))
            ) found;
            IF problem IS NOT NULL THEN
                RAISE EXCEPTION '%', problem;
            END IF;
            SELECT pg_get_expr(c.conbin, c.conrelid) INTO normalised
              FROM pg_constraint c
             WHERE c.conrelid = format('pg_temp.%I', probe_table)::regclass
               AND c.conname = 'reconcile_probe';
            filters := filters || jsonb_build_array(jsonb_build_object('expr', normalised));
        EXCEPTION WHEN OTHERS THEN
            -- OTHERS does not catch query_canceled: statement_timeout still ends the batch.
            filters := filters || jsonb_build_array(jsonb_build_object('error', SQLERRM));
        END;
    END LOOP;
    PERFORM set_config('reconcile.inspect_filters', filters::text, true);
END
$probe$
