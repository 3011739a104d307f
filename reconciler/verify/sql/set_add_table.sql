-- Back into the set as it was; no copy is queued (synchronize_data false).
SELECT pglogical.replication_set_add_table(
    set_name := %(set)s,
    relation := pg_catalog.to_regclass(%(table)s),
    synchronize_data := false,
    columns := %(columns)s::text[],
    row_filter := %(row_filter)s
)
