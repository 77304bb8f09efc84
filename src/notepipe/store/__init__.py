"""The PostgreSQL ledger: connections, migrations and guarded transitions."""
