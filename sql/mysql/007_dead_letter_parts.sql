-- tandem bookkeeping, version 7 (MySQL/MariaDB): a dead-lettered transaction larger than one part
-- (tandem's spill threshold) keeps its first changes in dead_letter.payload and the rest here, in
-- order, each part a JSON array of changes. Written part by part, read back part by part, so neither
-- recording nor replaying a large transaction holds it whole in memory, and no statement comes near
-- max_allowed_packet.
CREATE TABLE IF NOT EXISTS `__SCHEMA__`.dead_letter_part (
    dead_letter_id BIGINT NOT NULL,
    part INT NOT NULL,
    payload LONGTEXT NOT NULL,
    PRIMARY KEY (dead_letter_id, part),
    CONSTRAINT dead_letter_part_letter FOREIGN KEY (dead_letter_id)
        REFERENCES `__SCHEMA__`.dead_letter (id) ON DELETE CASCADE
) ENGINE=InnoDB;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (7);
