-- Each pglogical subscription's apply worker: running or not
-- (pg_stat_activity's backend_type is "pglogical apply <database oid>:<sub_id>",
-- the name the server log gives it too), and the ids to find it in the log.
SELECT s.sub_name::text,
       s.sub_id::bigint,
       d.oid::bigint,
       EXISTS (SELECT FROM pg_stat_activity a
                WHERE a.backend_type = 'pglogical apply ' || d.oid || ':' || s.sub_id),
       s.sub_enabled
  FROM pglogical.subscription s
 CROSS JOIN (SELECT oid FROM pg_database WHERE datname = current_database()) AS d
