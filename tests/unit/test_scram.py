"""SCRAM-SHA-256 verifiers, checked the way a server checks a login: RFC 7677's exchange."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from harness.services import scram

# RFC 7677 section 3: user "user", password "pencil".
RFC_PASSWORD = "pencil"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_AUTH_MESSAGE = (
    b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
)
RFC_CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def _keys(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    head, salt_part, keys = verifier.split("$")
    assert head == "SCRAM-SHA-256"
    iterations, salt = salt_part.split(":")
    stored, server = keys.split(":")
    return (
        int(iterations),
        base64.b64decode(salt),
        base64.b64decode(stored),
        base64.b64decode(server),
    )


def test_the_verifier_accepts_rfc_7677s_client_proof_and_signs_as_its_server() -> None:
    verifier = scram.scram_sha_256_verifier(RFC_PASSWORD, iterations=4096, salt=RFC_SALT)
    iterations, salt, stored_key, server_key = _keys(verifier)
    assert (iterations, salt) == (4096, RFC_SALT)
    # the server's check of the client's proof, with nothing but the verifier
    client_signature = hmac.digest(stored_key, RFC_AUTH_MESSAGE, "sha256")
    client_key = bytes(a ^ b for a, b in zip(RFC_CLIENT_PROOF, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert hmac.digest(server_key, RFC_AUTH_MESSAGE, "sha256") == RFC_SERVER_SIGNATURE


def test_another_password_or_iteration_count_fails_that_check() -> None:
    for verifier in (
        scram.scram_sha_256_verifier("pencil2", iterations=4096, salt=RFC_SALT),
        scram.scram_sha_256_verifier(RFC_PASSWORD, iterations=4095, salt=RFC_SALT),
    ):
        _, _, _, server_key = _keys(verifier)
        assert hmac.digest(server_key, RFC_AUTH_MESSAGE, "sha256") != RFC_SERVER_SIGNATURE


def test_each_verifier_gets_its_own_salt_and_says_its_iterations() -> None:
    first = scram.scram_sha_256_verifier("same", iterations=64)
    second = scram.scram_sha_256_verifier("same", iterations=64)
    assert _keys(first)[1] != _keys(second)[1]
    assert len(_keys(first)[1]) == scram.SALT_BYTES
    assert scram.verifier_iterations(first) == 64
    assert len(scram.generated_password()) >= 32  # 24 random bytes, base64url


@pytest.mark.parametrize(
    ("password", "iterations", "message"),
    [
        ("pw", 0, "iteration count must be >= 1"),
        ("pässword", 64, "printable ASCII"),
        ("tab\there", 64, "printable ASCII"),
    ],
)
def test_refuses_what_it_cannot_do_right(password: str, iterations: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scram.scram_sha_256_verifier(password, iterations=iterations)


def test_verifier_iterations_refuses_something_else() -> None:
    with pytest.raises(ValueError, match="not a SCRAM-SHA-256 verifier"):
        scram.verifier_iterations("md5abcdef")
