-- Columns of every declared table: number, name, type as format_type()
-- prints it, NOT NULL, and the column's position in the primary key (NULL:
-- not a key column), and whether an insert that leaves it out gets a value
-- (a default, an identity or a generated column): a subscriber may hold a
-- column its provider does not send only then, or when it allows NULL.
-- Joined to the tables by oid in the client.
SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       array_position(i.indkey::smallint[], a.attnum),
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' AS has_default
  FROM pg_attribute a
  LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
 WHERE a.attrelid IN (SELECT to_regclass(unnest(%(quoted)s::text[])))
   AND a.attnum > 0
   AND NOT a.attisdropped
