-- tandem bookkeeping, version 10 (PostgreSQL): who resolved a parked conflict and why, as the
-- person wrote it (`tandem conflicts resolve --note`, the console's required note).
ALTER TABLE __SCHEMA__.conflict ADD COLUMN IF NOT EXISTS resolved_by text;
ALTER TABLE __SCHEMA__.conflict ADD COLUMN IF NOT EXISTS note text;
INSERT INTO __SCHEMA__.schema_version (version) VALUES (10) ON CONFLICT DO NOTHING;
