-- tandem bookkeeping, version 4 (MySQL/MariaDB): initial copy progress. One row per incoming link and
-- business table: the last key copied (in the source engine's form), how many rows, whether the table
-- is done, and the source position the link's stream starts from (the first snapshot's).
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.copy_progress (
    source_node VARCHAR(64) NOT NULL,
    table_name VARCHAR(128) NOT NULL,
    last_key LONGTEXT NULL,
    rows_copied BIGINT NOT NULL DEFAULT 0,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    stream_start TEXT NOT NULL,
    started_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (source_node, table_name)
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (4);
