-- tandem bookkeeping, version 9 (PostgreSQL): the last `tandem verify` of each business table, as
-- this node took part in it (`tandem status` and the `tandem_verify_differences` gauge read it).
CREATE TABLE IF NOT EXISTS __SCHEMA__.verify_result (
    table_name text PRIMARY KEY,
    finished_at timestamptz NOT NULL DEFAULT now(),
    rows_compared bigint NOT NULL,
    differences bigint NOT NULL,
    repaired bigint NOT NULL DEFAULT 0,
    nodes text NOT NULL
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (9) ON CONFLICT DO NOTHING;
