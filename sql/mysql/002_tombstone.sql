-- tandem bookkeeping, version 2 (MySQL/MariaDB): tombstones. A local delete records its key and stamp
-- (the deleted row's version + 1), so a change from another node that arrives later can be weighed
-- against the delete by time.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.tombstone (
    target_table VARCHAR(200) NOT NULL,
    row_key VARCHAR(700) NOT NULL,
    version BIGINT NOT NULL,
    deleted_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (target_table, row_key(500))
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (2);
