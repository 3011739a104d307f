-- Step 1 of waking pglogical 2.4.2's supervisor (see sandbox_server.py):
-- a throwaway node, dropped again in the same transaction.
SELECT pglogical.create_node(node_name := %(node)s, dsn := 'dbname=postgres')
