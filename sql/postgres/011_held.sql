-- tandem bookkeeping, version 11 (PostgreSQL): changes held by a schema pause. When this node's table
-- can no longer take a link's changes (a synced column dropped or renamed, the table gone), the
-- link holds that table's changes here, in order (id), written in the same transaction as the
-- checkpoint that moves past them; other tables go on. When the schema is fixed, the link applies
-- them in order and deletes them in one transaction. `gone_columns` lists the columns whose loss paused
-- the table (comma-separated), so that a restarted tandem knows what must come back. `change` is the source change as captured
-- (JSON, `payload`), so a changed mapping applies to it.
CREATE TABLE IF NOT EXISTS __SCHEMA__.held (
    id bigserial PRIMARY KEY,
    source_node text NOT NULL,
    table_name text NOT NULL,
    target_table text NOT NULL,
    reason text NOT NULL,
    gone_columns text NOT NULL DEFAULT '',
    source_position text,
    origin text NOT NULL,
    commit_time bigint NOT NULL,
    payload text NOT NULL,
    held_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS held_by_table ON __SCHEMA__.held (source_node, table_name, id);
-- The columns each target table had (and the type each had first), as tandem saw them when a link
-- started: a column dropped or narrowed while tandem was not running is then still recognised as one
-- the table had, and pauses the table instead of being taken for one it never had.
CREATE TABLE IF NOT EXISTS __SCHEMA__.target_column (
    table_name text NOT NULL,
    column_name text NOT NULL,
    type_name text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, column_name)
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (11) ON CONFLICT DO NOTHING;
