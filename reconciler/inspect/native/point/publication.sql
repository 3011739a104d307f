-- One publication of this database, by name, with its flags.
SELECT p.pubname::text AS name, p.puballtables AS all_tables,
       p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate
  FROM pg_publication p
 WHERE p.pubname = %(name)s
