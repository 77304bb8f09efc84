"""Row and connection types of the ledger (dict rows)."""

from __future__ import annotations

from typing import Any, TypeAlias

import psycopg

Row: TypeAlias = dict[str, Any]
Conn: TypeAlias = psycopg.Connection[Row]
