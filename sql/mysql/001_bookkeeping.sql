-- tandem bookkeeping, version 1 (MySQL/MariaDB). __SCHEMA__ is replaced by [tandem] schema.
-- One statement per ';' at the end of a line; no statement contains one elsewhere.
CREATE DATABASE IF NOT EXISTS `__SCHEMA__` CHARACTER SET utf8mb4;
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.schema_version (
    version INT PRIMARY KEY,
    applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
-- One row per incoming link: where the link from source_node stands. Written in the same transaction
-- as the changes it covers.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.checkpoint (
    source_node VARCHAR(64) PRIMARY KEY,
    position TEXT NOT NULL,
    commit_time DATETIME(6) NULL,
    applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
-- The conflict audit log and the manual review queue.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.conflict (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    link VARCHAR(200) NOT NULL,
    source_node VARCHAR(64) NOT NULL,
    table_name VARCHAR(128) NOT NULL,
    target_table VARCHAR(200) NOT NULL,
    row_key VARCHAR(700) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    before_image LONGTEXT NULL,
    current_image LONGTEXT NULL,
    incoming_image LONGTEXT NULL,
    decision VARCHAR(32) NOT NULL,
    rule VARCHAR(32) NOT NULL,
    state VARCHAR(16) NOT NULL,
    source_position TEXT NULL,
    payload LONGTEXT NULL,
    detected_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    resolved_at DATETIME(6) NULL,
    resolution VARCHAR(32) NULL,
    KEY conflict_open_key (target_table, row_key(200), state)
) ENGINE=InnoDB;
-- Transactions that failed with a definite error, with what is needed to replay them.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.dead_letter (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    link VARCHAR(200) NOT NULL,
    source_node VARCHAR(64) NOT NULL,
    source_position TEXT NOT NULL,
    commit_time DATETIME(6) NULL,
    payload LONGTEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INT NOT NULL DEFAULT 1,
    state VARCHAR(16) NOT NULL DEFAULT 'open',
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_attempt_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (1);
