-- Every replication slot of the server (the function behind the
-- pg_replication_slots view, without the view's join): the client keeps
-- those of this database (datoid) by plugin. wal_status 'lost' means the
-- slot fell past max_slot_wal_keep_size and can only be re-created.
SELECT slot_name::text, plugin::text, datoid, wal_status
  FROM pg_get_replication_slots()
