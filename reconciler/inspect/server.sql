-- Server and database facts for preflight, one JSON object. Nothing here
-- needs the pglogical schema, so it runs on any database.
SELECT jsonb_build_object(
    'server_version', current_setting('server_version'),
    'server_version_num', current_setting('server_version_num')::integer,
    'pglogical_version', (SELECT extversion FROM pg_extension WHERE extname = 'pglogical'),
    'wal_level', current_setting('wal_level'),
    'shared_preload_libraries', current_setting('shared_preload_libraries'),
    'max_slot_wal_keep_size', current_setting('max_slot_wal_keep_size'),
    -- Two nodes with one system_identifier live on one server (preflight).
    'system_identifier', (SELECT system_identifier::text FROM pg_control_system()),
    'database', current_database(),
    -- Every pglogical slot of this database: all of them are orphans when
    -- the extension is absent (no subscription can use them then).
    -- Hardened builds refuse output plugins not listed here (NULL: no such
    -- setting, as in stock PostgreSQL); pglogical needs pglogical_output.
    'output_plugin_libraries', current_setting('output_plugin_libraries', true),
    -- wal_status of every pglogical slot here: a subscription whose slot is
    -- missing or 'lost' (past max_slot_wal_keep_size) can only be re-created.
    'slot_status', (
        SELECT coalesce(jsonb_object_agg(s.slot_name::text, coalesce(s.wal_status, 'unknown')), '{}')
          FROM pg_replication_slots s
         WHERE s.plugin = 'pglogical_output' AND s.database = current_database()
    ),
    'pglogical_slots', (
        SELECT coalesce(jsonb_agg(s.slot_name::text ORDER BY s.slot_name), '[]')
          FROM pg_replication_slots s
         WHERE s.plugin = 'pglogical_output' AND s.database = current_database()
    )
) AS server
