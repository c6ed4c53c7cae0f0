-- tandem bookkeeping, version 7 (PostgreSQL): a dead-lettered transaction larger than one part
-- (tandem's spill threshold) keeps its first changes in dead_letter.payload and the rest here, in
-- order, each part a JSON array of changes. Written part by part, read back part by part, so neither
-- recording nor replaying a large transaction holds it whole in memory.
CREATE TABLE IF NOT EXISTS __SCHEMA__.dead_letter_part (
    dead_letter_id bigint NOT NULL REFERENCES __SCHEMA__.dead_letter (id) ON DELETE CASCADE,
    part integer NOT NULL,
    payload text NOT NULL,
    PRIMARY KEY (dead_letter_id, part)
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (7) ON CONFLICT DO NOTHING;
