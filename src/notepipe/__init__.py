"""notepipe: an RQ note-enrichment pipeline with a PostgreSQL ledger, fenced attempts and a reconciler."""

__version__ = "0.1.0"
