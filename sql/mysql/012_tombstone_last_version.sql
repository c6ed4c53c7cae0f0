-- tandem bookkeeping, version 12 (MySQL/MariaDB): the version of the row a local delete removed,
-- as on PostgreSQL. The binlog carries every deleted row whole here, so the delete trigger leaves it
-- NULL; the column keeps the tombstone table the same on every node.
ALTER TABLE `__SCHEMA__`.tombstone ADD COLUMN IF NOT EXISTS last_version BIGINT NULL;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (12);
