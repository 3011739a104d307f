-- How far a replication origin has applied its provider's WAL (NULL: no such origin).
SELECT o.remote_lsn::text AS remote_lsn
  FROM pg_replication_origin_status o
 WHERE o.external_id = %(origin)s
