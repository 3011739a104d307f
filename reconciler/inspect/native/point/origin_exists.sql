-- Whether this server holds a replication origin of this name (origins are per server, not per database).
SELECT EXISTS (SELECT FROM pg_replication_origin o WHERE o.roname = %(origin)s) AS present
