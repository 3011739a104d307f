-- Step 2 of waking pglogical 2.4.2's supervisor: drop the throwaway node.
SELECT pglogical.drop_node(%(node)s)
