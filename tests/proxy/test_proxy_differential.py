"""The same API requests to the built-in server and the real Toxiproxy: same answers.

The real server (built by ``make peers``) is the reference. Each difference the
built-in keeps on purpose is listed in ``DELIBERATE`` with its reason and in
harness/proxy/README.md; any other difference fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.proxy.launcher import ToxiproxyServer
from harness.services.ports import free_port
from tests.proxy.conftest import real_toxiproxy_binary
from tests.proxy.differential import corpus, run_case, substitute
from tests.proxy.proxy_helpers import TcpServer, echo

#: (case, request index) -> why the built-in answers differently on purpose.
DELIBERATE: dict[tuple[str, int], str] = {}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ToxiproxyServer, ToxiproxyServer]]:
    builtin = ToxiproxyServer(builtin=True)
    real = ToxiproxyServer(binary=real_toxiproxy_binary())
    with builtin, real:
        yield builtin, real


def test_api_answers_match_the_real_server(
    servers: tuple[ToxiproxyServer, ToxiproxyServer],
) -> None:
    builtin, real = servers
    up1, up2 = TcpServer(echo), TcpServer(echo)
    fixed, other = free_port(), free_port()
    known = {fixed, other, up1.port, up2.port}
    upstreams = (up1.address, up2.address)
    compared = 0
    differences: list[str] = []
    unexpected: list[str] = []
    try:
        with (
            httpx.Client(base_url=builtin.url, timeout=30) as ours,
            httpx.Client(base_url=real.url, timeout=30) as theirs,
        ):
            for raw in corpus(fixed, other):
                case = substitute(raw, *upstreams)
                got = run_case(ours, case, known, upstreams)
                want = run_case(theirs, case, known, upstreams)
                for index, (req, a, b) in enumerate(zip(case.requests, got, want, strict=True)):
                    compared += 1
                    if a == b:
                        continue
                    line = f"{case.name}[{index}] {req.method} {req.path} {req.body!r}:\n  built-in {a}\n  real     {b}"
                    differences.append(line)
                    if (case.name, index) not in DELIBERATE:
                        unexpected.append(line)
    finally:
        up1.close()
        up2.close()
    print(
        f"\ndifferential: {compared} requests compared, {len(differences)} differ "
        f"({len(differences) - len(unexpected)} deliberate)"
    )
    for line in differences:
        print(line)
    assert not unexpected, "\n".join(unexpected)
