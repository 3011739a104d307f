-- Columns of every declared table: number, name, type as format_type()
-- prints it, NOT NULL. Joined to the tables by oid in the client.
SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
  FROM pg_attribute a
 WHERE a.attrelid IN (SELECT to_regclass(unnest(%(quoted)s::text[])))
   AND a.attnum > 0
   AND NOT a.attisdropped
