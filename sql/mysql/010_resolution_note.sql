-- tandem bookkeeping, version 10 (MySQL/MariaDB): who resolved a parked conflict and why, as the
-- person wrote it (`tandem conflicts resolve --note`, the console's required note).
ALTER TABLE `__SCHEMA__`.conflict ADD COLUMN IF NOT EXISTS resolved_by VARCHAR(200) NULL;
ALTER TABLE `__SCHEMA__`.conflict ADD COLUMN IF NOT EXISTS note TEXT NULL;
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (10);
