-- tandem bookkeeping, version 4 (PostgreSQL): initial copy progress. One row per incoming link and
-- business table: the last key copied (in the source engine's form), how many rows, whether the table
-- is done, and the source position the link's stream starts from (the first snapshot's).
CREATE TABLE IF NOT EXISTS __SCHEMA__.copy_progress (
    source_node text NOT NULL,
    table_name text NOT NULL,
    last_key text,
    rows_copied bigint NOT NULL DEFAULT 0,
    done boolean NOT NULL DEFAULT false,
    stream_start text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_node, table_name)
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (4) ON CONFLICT DO NOTHING;
