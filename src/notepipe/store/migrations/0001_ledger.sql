-- The ledger: PostgreSQL is the source of truth for every note.
CREATE TABLE notes (
    id            BIGSERIAL PRIMARY KEY,
    content       TEXT        NOT NULL,
    metadata      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status        TEXT        NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'queued', 'processing', 'completed', 'failed')),
    attempt       INTEGER     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    lease_until   TIMESTAMPTZ,
    worker        TEXT,
    job_id        TEXT,
    enrichment    JSONB,
    last_error    TEXT,
    trace_context JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    queued_at     TIMESTAMPTZ,
    started_at    TIMESTAMPTZ,
    completed_at  TIMESTAMPTZ,
    CHECK ((status = 'completed') = (enrichment IS NOT NULL))
);

CREATE INDEX notes_status_idx ON notes (status) WHERE status IN ('pending', 'queued', 'processing');

-- Append-only history: one row per transition, written in the same transaction.
CREATE TABLE note_events (
    id          BIGSERIAL PRIMARY KEY,
    note_id     BIGINT      NOT NULL REFERENCES notes (id),
    from_status TEXT,
    to_status   TEXT        NOT NULL,
    attempt     INTEGER     NOT NULL,
    worker      TEXT,
    job_id      TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    error       TEXT
);

CREATE INDEX note_events_note_idx ON note_events (note_id, id);

CREATE FUNCTION note_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'note_events is append-only';
END;
$$;

CREATE TRIGGER note_events_no_update BEFORE UPDATE OR DELETE ON note_events
    FOR EACH ROW EXECUTE FUNCTION note_events_append_only();
