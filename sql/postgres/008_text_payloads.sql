-- tandem bookkeeping, version 8 (PostgreSQL): the dead letters' and conflict records' payloads and
-- row images are stored as text (JSON written by tandem), not jsonb. jsonb cannot hold the escape
-- \u0000, so a row whose text held a NUL character (MariaDB admits it; PostgreSQL text refuses it)
-- could be neither applied nor recorded, and halted its link. Idempotent: text to text changes
-- nothing. On an upgrade this rewrites the two tables once.
ALTER TABLE __SCHEMA__.dead_letter ALTER COLUMN payload TYPE text;
ALTER TABLE __SCHEMA__.conflict ALTER COLUMN before_image TYPE text, ALTER COLUMN current_image TYPE text, ALTER COLUMN incoming_image TYPE text, ALTER COLUMN payload TYPE text;
INSERT INTO __SCHEMA__.schema_version (version) VALUES (8) ON CONFLICT DO NOTHING;
