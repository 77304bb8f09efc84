"""SCRAM-SHA-256 verifiers (RFC 5802 / RFC 7677) as PostgreSQL stores them.

A verifier holds the salt, the iteration count and two keys derived from the
password, never the password. Every login makes the *client* run PBKDF2 over the
password with the verifier's iteration count: 4096 iterations (libpq's default)
cost ~2.1 ms of CPU per connection on this project's machines, most of what a
work-horse pays to open its one connection through PgBouncer.

The iteration count is there to slow an offline guess of a *weak* password from a
stolen verifier. The harness's generated passwords are 24 random bytes (192 bits,
``secrets.token_urlsafe(24)``): no guessing gets near them at any iteration count,
so the harness stores their verifiers with :data:`GENERATED_PASSWORD_ITERATIONS`.
A password someone chose keeps :data:`DEFAULT_ITERATIONS`. Authentication is
scram-sha-256 either way: the password never crosses the wire and both sides
prove themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: libpq's and PostgreSQL's default (RFC 7677's minimum for a human-chosen password).
DEFAULT_ITERATIONS = 4096
#: For passwords of :data:`GENERATED_PASSWORD_BYTES` random bytes only.
GENERATED_PASSWORD_ITERATIONS = 64
GENERATED_PASSWORD_BYTES = 24
SALT_BYTES = 16


def generated_password() -> str:
    """A random password strong enough for :data:`GENERATED_PASSWORD_ITERATIONS`."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def scram_sha_256_verifier(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``.

    The password is used as its UTF-8 bytes: SASLprep leaves printable ASCII (every
    generated password) unchanged; for anything else, PostgreSQL's own
    ``encrypt_password`` is the reference and should be used instead.
    """
    if iterations < 1:
        raise ValueError(f"a SCRAM iteration count must be >= 1, got {iterations}")
    if not password.isascii() or not password.isprintable():
        raise ValueError(
            "scram_sha_256_verifier takes printable ASCII passwords only (no SASLprep here); "
            "let PostgreSQL compute the verifier of any other password"
        )
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def verifier_iterations(verifier: str) -> int:
    """The iteration count of a stored ``SCRAM-SHA-256$...`` verifier."""
    if not verifier.startswith("SCRAM-SHA-256$"):
        raise ValueError("not a SCRAM-SHA-256 verifier")
    return int(verifier.split("$", 2)[1].split(":", 1)[0])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
