-- Server and database facts for preflight, one row. Nothing here needs the
-- pglogical schema, so it runs on any database.
SELECT current_setting('server_version') AS server_version,
       current_setting('server_version_num')::integer AS server_version_num,
       current_setting('wal_level') AS wal_level,
       current_setting('shared_preload_libraries') AS shared_preload_libraries,
       current_setting('max_slot_wal_keep_size') AS max_slot_wal_keep_size,
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
       (SELECT oid FROM pg_database WHERE datname = current_database()) AS database_oid
