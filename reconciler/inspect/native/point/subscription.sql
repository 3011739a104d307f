-- One native subscription of this database, by name; its replication origin is pg_<oid>.
SELECT s.oid, s.subname::text AS name, s.subconninfo AS conninfo, s.subenabled AS enabled,
       s.subslotname::text AS slot_name, s.subpublications::text[] AS publications,
       'pg_' || s.oid AS origin
  FROM pg_subscription s
 WHERE s.subname = %(name)s
   AND s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
