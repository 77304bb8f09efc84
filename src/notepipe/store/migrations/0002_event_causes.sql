-- Structured attempt ends: every event that leaves 'processing' records why
-- (notepipe.models.EndCause: completed, error, timeout, non_retryable, lease_expired),
-- and the lease involved: a claim's lease, or the lease a recovery saw expire.
ALTER TABLE note_events ADD COLUMN cause TEXT;
ALTER TABLE note_events ADD COLUMN lease_until TIMESTAMPTZ;
