-- The publications of this database that publish the table, with the operations each
-- publishes (a FOR ALL TABLES one too), so their deletes can be switched off for one
-- transaction and back exactly as they were.
SELECT p.pubname::text, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate
FROM pg_catalog.pg_publication AS p
WHERE EXISTS (
    SELECT FROM pg_catalog.pg_publication_tables AS t
    WHERE t.pubname = p.pubname
      AND pg_catalog.format('%%I.%%I', t.schemaname, t.tablename)::regclass = pg_catalog.to_regclass(%(table)s)
)
ORDER BY 1
