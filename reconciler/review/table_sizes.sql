-- Size and row estimate of each named table on this node, to estimate an
-- initial copy: pg_total_relation_size (heap + indexes + TOAST) and
-- pg_class.reltuples (the planner's estimate; -1 until first ANALYZE on
-- PostgreSQL >= 14). A table that does not exist yields NULLs.
SELECT t.name,
       c.reltuples::bigint AS row_estimate,
       pg_total_relation_size(c.oid) AS total_bytes
  FROM unnest(%(tables)s::text[]) AS t(name)
  LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)
 ORDER BY t.name
