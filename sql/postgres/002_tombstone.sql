-- tandem bookkeeping, version 2 (PostgreSQL): tombstones. A local delete records its key and stamp
-- (the deleted row's version + 1), so a change from another node that arrives later can be weighed
-- against the delete by time.
CREATE TABLE IF NOT EXISTS __SCHEMA__.tombstone (
    target_table text NOT NULL,
    row_key text NOT NULL,
    version bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_table, row_key)
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (2) ON CONFLICT DO NOTHING;
