"""Redis and PostgreSQL services behind one interface, with local, testcontainers and external backends."""
