-- tandem bookkeeping, version 12 (PostgreSQL): the version of the row a local delete removed. A
-- table whose key and tandem version are all its rules need is logged without its old rows
-- (REPLICA IDENTITY DEFAULT): its deletes reach the WAL as keys only, and the delete trigger, which
-- runs just before each row goes, writes the row's version here, in the same transaction. The
-- reader takes it from there for the delete's version check (`version` keeps the greatest stamp of
-- the key's deletes, which is not always this row's).
ALTER TABLE __SCHEMA__.tombstone ADD COLUMN IF NOT EXISTS last_version bigint;
INSERT INTO __SCHEMA__.schema_version (version) VALUES (12) ON CONFLICT DO NOTHING;
