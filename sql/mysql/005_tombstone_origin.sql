-- tandem bookkeeping, version 5 (MySQL/MariaDB): one tombstone per key and deleting node, holding
-- the latest stamp of that node's deletes of the key that this node has seen (its own, or applied).
-- The tombstones of a key are kept when the key is inserted again: a local insert bumps their
-- `revived` count in its own transaction, so the insert carries, in the binlog, every delete of the
-- key its node had seen. A peer that has seen no delete beyond those takes the insert as later than
-- its deletes; otherwise the insert was concurrent with a delete there.
ALTER TABLE `__SCHEMA__`.tombstone ADD COLUMN IF NOT EXISTS node VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE `__SCHEMA__`.tombstone ADD COLUMN IF NOT EXISTS revived BIGINT NOT NULL DEFAULT 0;
ALTER TABLE `__SCHEMA__`.tombstone DROP PRIMARY KEY, ADD PRIMARY KEY (target_table, row_key(500), node);
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (5);
