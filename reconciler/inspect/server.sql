-- Server and database facts for preflight, one row. Nothing here needs the
-- pglogical schema, so it runs on any database.
SELECT current_setting('server_version') AS server_version,
       current_setting('server_version_num')::integer AS server_version_num,
       current_setting('wal_level') AS wal_level,
       current_setting('shared_preload_libraries') AS shared_preload_libraries,
       current_setting('max_slot_wal_keep_size') AS max_slot_wal_keep_size,
       -- The capacity check (capacity.py); settings, not catalog: not in the fingerprint.
       current_setting('max_worker_processes')::integer AS max_worker_processes,
       current_setting('max_replication_slots')::integer AS max_replication_slots,
       current_setting('max_wal_senders')::integer AS max_wal_senders,
       -- Hardened builds refuse output plugins not listed here (NULL: no such
       -- setting, as in stock PostgreSQL); pglogical needs pglogical_output.
       current_setting('output_plugin_libraries', true) AS output_plugin_libraries,
       -- Two nodes with one system_identifier live on one server (preflight).
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       current_database() AS database,
       -- How this session resolves names: a row filter's normal form (and
       -- pg_get_expr's text of a live one) depends on it.
       current_user AS role,
       array_to_string(current_schemas(true), ',') AS search_path,
       (SELECT extversion FROM pg_extension WHERE extname = 'pglogical') AS pglogical_version,
       (SELECT oid FROM pg_database WHERE datname = current_database()) AS database_oid,
       -- The tool's own records: the newest apply's result and the schema migrations this
       -- database ran, as JSON {name: checksum}. The tables do not exist before the first apply,
       -- and a read-only review role may not read them: query_to_xml runs its one query only
       -- on those that exist and may be read, so this never fails (an empty answer is no XML: NULL).
       r.last_apply_result,
       r.schema_migrations,
       -- Tables this subscriber still owes rows (pending_rows.py), as a JSON array: only names
       -- shaped like schema.table, at most 200 (anyone who may write the table may write anything).
       r.pending_rows,
       -- Whether an apply holds this node's lock now (apply/locks.py's key, as pg_locks shows a
       -- bigint advisory key): a `running` record without it is an interrupted apply. Read only
       -- for a `running` record (pg_locks is the dearest read of a new backend).
       CASE WHEN r.last_apply_result = 'running' THEN
         EXISTS (SELECT 1 FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %(lock_classid)s
                   AND l.objid = %(lock_objid)s AND l.objsubid = 1
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
       END AS apply_lock_held,
       -- May this role read the server log (inspect/server_log_tail.sql)?
       has_function_privilege('pg_catalog.pg_current_logfile()', 'EXECUTE')
         AND has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
         AND has_function_privilege('pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE')
         AS log_readable
  FROM (SELECT (xpath('/row/a/text()', x))[1]::text AS last_apply_result,
               (xpath('/row/m/text()', x))[1]::text AS schema_migrations,
               (xpath('/row/p/text()', x))[1]::text AS pending_rows
          FROM (SELECT CASE WHEN q.log OR q.migrations OR q.pending THEN
                         nullif(query_to_xml(
                           'SELECT '
                           || CASE WHEN q.log
                                   THEN '(SELECT result FROM reconcile.apply_log ORDER BY id DESC LIMIT 1)'
                                   ELSE 'NULL' END
                           || ' AS a, '
                           || CASE WHEN q.migrations
                                   THEN '(SELECT coalesce(json_object_agg(name, checksum ORDER BY id), ''{}'')::text'
                                        ' FROM reconcile.schema_migrations)'
                                   ELSE 'NULL' END
                           || ' AS m, '
                           || CASE WHEN q.pending
                                   THEN '(SELECT coalesce(json_agg(n ORDER BY n), ''[]'')::text FROM'
                                        ' (SELECT table_name AS n FROM reconcile.pending_rows'
                                        '   WHERE table_name ~ ''^[A-Za-z_][A-Za-z0-9_$]*[.][A-Za-z_][A-Za-z0-9_$]*$'''
                                        '   ORDER BY 1 LIMIT 200) AS t)'
                                   ELSE 'NULL' END
                           || ' AS p', false, true, '')::text, '')::xml
                       END AS x
                  FROM (SELECT coalesce(has_table_privilege(to_regclass('reconcile.apply_log'), 'SELECT'),
                                        false) AS log,
                               coalesce(has_table_privilege(to_regclass('reconcile.schema_migrations'), 'SELECT'),
                                        false) AS migrations,
                               coalesce(has_table_privilege(to_regclass('reconcile.pending_rows'), 'SELECT'),
                                        false) AS pending) AS q) AS answer) AS r
