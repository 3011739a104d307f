-- Returns once every slot of this node has confirmed the current WAL position
-- (its subscribers applied our repair); bounded by the caller's statement_timeout.
SELECT pglogical.wait_slot_confirm_lsn(NULL, NULL)
