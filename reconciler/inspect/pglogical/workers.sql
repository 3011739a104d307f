-- Each pglogical subscription's apply worker: running or not
-- (pg_stat_activity's backend_type is "pglogical apply <database oid>:<sub_id>",
-- the name the server log gives it too), and the ids to find it in the log.
-- pg_stat_get_activity() is what the pg_stat_activity view reads, without
-- the view's joins (a new backend pays for each catalog it opens).
SELECT s.sub_name::text,
       s.sub_id::bigint,
       d.oid::bigint,
       EXISTS (SELECT FROM pg_stat_get_activity(NULL::integer) a
                WHERE a.backend_type = 'pglogical apply ' || d.oid || ':' || s.sub_id),
       s.sub_enabled
  FROM pglogical.subscription s
 CROSS JOIN (SELECT oid FROM pg_database WHERE datname = current_database()) AS d
