-- Only keys that pass at no provider (re-checked just before); never TRUNCATE.
DELETE FROM {table} WHERE {key} = ANY (%(keys)s::uuid[])
RETURNING {key}
