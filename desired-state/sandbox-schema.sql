-- Application schema for the sandbox: run on every node's database by
-- `reconcile sandbox up --schema desired-state/sandbox-schema.sql`.
-- Synchronised tables use UUID primary keys (rows from many districts meet
-- at a region), and every column a row filter reads is NOT NULL.
CREATE TABLE IF NOT EXISTS public.technology (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text NOT NULL,
    description text,
    district    text NOT NULL,
    approved    boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.approach (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title         text NOT NULL,
    status        text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'submitted', 'approved', 'withdrawn')),
    district      text NOT NULL,
    internal_note text,            -- stays at the district: not in the column list
    updated_at    timestamptz NOT NULL DEFAULT now()
);
