-- tandem bookkeeping, version 5 (PostgreSQL): one tombstone per key and deleting node, holding the
-- latest stamp of that node's deletes of the key that this node has seen (its own, or applied).
-- The tombstones of a key are kept when the key is inserted again: a local insert bumps their
-- `revived` count in its own transaction, so the insert carries, in the log, every delete of the key
-- its node had seen (REPLICA IDENTITY FULL). A peer that has seen no delete beyond those takes the
-- insert as later than its deletes; otherwise the insert was concurrent with a delete there.
ALTER TABLE __SCHEMA__.tombstone ADD COLUMN IF NOT EXISTS node text NOT NULL DEFAULT '';
ALTER TABLE __SCHEMA__.tombstone ADD COLUMN IF NOT EXISTS revived bigint NOT NULL DEFAULT 0;
ALTER TABLE __SCHEMA__.tombstone DROP CONSTRAINT IF EXISTS tombstone_pkey;
ALTER TABLE __SCHEMA__.tombstone ADD CONSTRAINT tombstone_pkey PRIMARY KEY (target_table, row_key, node);
ALTER TABLE __SCHEMA__.tombstone REPLICA IDENTITY FULL;
INSERT INTO __SCHEMA__.schema_version (version) VALUES (5) ON CONFLICT DO NOTHING;
