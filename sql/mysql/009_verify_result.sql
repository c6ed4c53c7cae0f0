-- tandem bookkeeping, version 9 (MySQL/MariaDB): the last `tandem verify` of each business table, as
-- this node took part in it (`tandem status` and the `tandem_verify_differences` gauge read it).
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.verify_result (
    table_name VARCHAR(128) NOT NULL PRIMARY KEY,
    finished_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    rows_compared BIGINT NOT NULL,
    differences BIGINT NOT NULL,
    repaired BIGINT NOT NULL DEFAULT 0,
    nodes TEXT NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (9);
