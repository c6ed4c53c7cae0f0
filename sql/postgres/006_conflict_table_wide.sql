-- tandem bookkeeping, version 6 (PostgreSQL): a conflict record may concern a whole table rather than
-- one row (a replicated TRUNCATE, kind `truncate`): its row_key is NULL.
ALTER TABLE __SCHEMA__.conflict ALTER COLUMN row_key DROP NOT NULL;
INSERT INTO __SCHEMA__.schema_version (version) VALUES (6) ON CONFLICT DO NOTHING;
