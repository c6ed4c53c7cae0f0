-- tandem bookkeeping, version 1 (PostgreSQL). __SCHEMA__ is replaced by [tandem] schema.
-- One statement per ';' at the end of a line; no statement contains one elsewhere.
CREATE SCHEMA IF NOT EXISTS __SCHEMA__;
CREATE TABLE IF NOT EXISTS __SCHEMA__.schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
-- One row per incoming link: where the link from source_node stands. Written in the same transaction
-- as the changes it covers.
CREATE TABLE IF NOT EXISTS __SCHEMA__.checkpoint (
    source_node text PRIMARY KEY,
    position text NOT NULL,
    commit_time timestamptz,
    applied_at timestamptz NOT NULL DEFAULT now()
);
-- The conflict audit log and the manual review queue.
CREATE TABLE IF NOT EXISTS __SCHEMA__.conflict (
    id bigserial PRIMARY KEY,
    link text NOT NULL,
    source_node text NOT NULL,
    table_name text NOT NULL,
    target_table text NOT NULL,
    row_key text NOT NULL,
    kind text NOT NULL,
    before_image jsonb,
    current_image jsonb,
    incoming_image jsonb,
    decision text NOT NULL,
    rule text NOT NULL,
    state text NOT NULL,
    source_position text,
    payload jsonb,
    detected_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution text
);
CREATE INDEX IF NOT EXISTS conflict_open_key ON __SCHEMA__.conflict (target_table, row_key) WHERE state <> 'resolved';
-- Transactions that failed with a definite error, with what is needed to replay them.
CREATE TABLE IF NOT EXISTS __SCHEMA__.dead_letter (
    id bigserial PRIMARY KEY,
    link text NOT NULL,
    source_node text NOT NULL,
    source_position text NOT NULL,
    commit_time timestamptz,
    payload jsonb NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    state text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO __SCHEMA__.schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;
