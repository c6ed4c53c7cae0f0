-- tandem bookkeeping, version 3 (MySQL/MariaDB): heartbeats. With `[heartbeat] interval` set,
-- `tandem run` updates this node's row periodically. The write is captured like any change, so every
-- outgoing link sees progress (lag, checkpoint, binlog position) on a quiet database; no link maps the
-- table, so it is never applied as a row.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.heartbeat (
    node VARCHAR(64) PRIMARY KEY,
    beat BIGINT NOT NULL,
    beat_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (3);
