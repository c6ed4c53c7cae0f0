-- tandem bookkeeping, version 6 (MySQL/MariaDB): a conflict record may concern a whole table rather
-- than one row (a replicated TRUNCATE, kind `truncate`): its row_key is NULL.
ALTER TABLE `__SCHEMA__`.conflict MODIFY row_key VARCHAR(700) NULL;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (6);
