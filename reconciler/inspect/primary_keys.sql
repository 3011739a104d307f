-- Primary key of every declared table: the column numbers in key order.
SELECT i.indrelid, i.indkey::smallint[]
  FROM pg_index i
 WHERE i.indisprimary
   AND i.indrelid IN (SELECT to_regclass(unnest(%(quoted)s::text[])))
