-- tandem bookkeeping, version 8 (MySQL/MariaDB): nothing to change. PostgreSQL's payloads and row
-- images move from jsonb to text in this version; MySQL/MariaDB stored them as LONGTEXT from the start.
INSERT IGNORE INTO `__SCHEMA__`.schema_version (version) VALUES (8);
