-- tandem bookkeeping, version 11 (MySQL/MariaDB): changes held by a schema pause. When this node's
-- table can no longer take a link's changes (a synced column dropped or renamed, the table gone),
-- the link holds that table's changes here, in order (id), written in the same transaction as the
-- checkpoint that moves past them; other tables go on. When the schema is fixed, the link applies
-- them in order and deletes them in one transaction. `gone_columns` lists the columns whose loss paused
-- the table (comma-separated), so that a restarted tandem knows what must come back. `change` is the source change as captured
-- (JSON, `payload`), so a changed mapping applies to it.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.held (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    source_node VARCHAR(64) NOT NULL,
    table_name VARCHAR(128) NOT NULL,
    target_table VARCHAR(300) NOT NULL,
    reason TEXT NOT NULL,
    gone_columns TEXT NOT NULL,
    source_position TEXT,
    origin VARCHAR(64) NOT NULL,
    commit_time BIGINT NOT NULL,
    payload LONGTEXT NOT NULL,
    held_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY held_by_table (source_node, table_name, id)
) ENGINE=InnoDB;
-- The columns each target table had (and the type each had first), as tandem saw them when a link
-- started: a column dropped or narrowed while tandem was not running is then still recognised as one
-- the table had, and pauses the table instead of being taken for one it never had.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.target_column (
    table_name VARCHAR(300) NOT NULL,
    column_name VARCHAR(64) NOT NULL,
    type_name TEXT NOT NULL,
    seen_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (table_name, column_name)
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (11);
