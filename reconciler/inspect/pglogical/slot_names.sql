-- The slot name pglogical gives each declared subscription to this node
-- (pgl_<subscriber db>_<provider node>_<subscription>, each part shortened),
-- computed by pglogical itself; which slots are orphans is inspect/slots.py.
SELECT x.subscription::text AS subscription,
       pglogical.pglogical_gen_slot_name(x.db, x.provider, x.subscription)::text AS slot
  FROM unnest(%(slot_db)s::name[], %(slot_provider)s::name[], %(slot_subscription)s::name[])
       AS x(db, provider, subscription)
