-- tandem bookkeeping, version 3 (PostgreSQL): heartbeats. With `[heartbeat] interval` set, `tandem run`
-- updates this node's row periodically. The write is captured like any change, so every outgoing link
-- sees progress (lag, checkpoint, slot position) on a quiet database; no link maps the table, so it
-- is never applied as a row.
CREATE TABLE IF NOT EXISTS __SCHEMA__.heartbeat (
    node text PRIMARY KEY,
    beat bigint NOT NULL,
    beat_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (3) ON CONFLICT DO NOTHING;
