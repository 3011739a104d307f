-- Which of the given keys pass the filter here now (re-checked right before a delete).
SELECT t.{key}::text
FROM (SELECT * FROM {table} WHERE {filter}) AS t
WHERE t.{key} = ANY (%(keys)s::uuid[])
