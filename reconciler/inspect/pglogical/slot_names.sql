-- The slot name pglogical gives each declared subscription to this node
-- (pgl_<subscriber db>_<provider node>_<subscription>, each part shortened),
-- computed by pglogical itself. A slot of this database named neither so nor
-- '<name>_%%08x' (a table sync in progress, pglogical_sync.c) is an orphan.
SELECT x.subscription, pglogical.pglogical_gen_slot_name(x.db, x.provider, x.subscription)::text
  FROM unnest(%(slot_db)s::name[], %(slot_provider)s::name[], %(slot_subscription)s::name[])
       AS x(db, provider, subscription)
