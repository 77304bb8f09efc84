"""The differential corpus: the same API requests sent to the built-in server and to the
real Toxiproxy, answers compared after normalisation.

A case is a list of requests run from an empty server (every proxy deleted first),
so one difference does not cascade into the next case. Both servers get the same
fixed listen ports (cases run on one server, then the other), so only ports the
kernel picks (``:0``) are normalised, together with the upstream address.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

Body = dict[str, Any] | list[Any] | bytes | None
TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
}
_ADDRESS = re.compile(r"(127\.0\.0\.1|\[::\]|localhost|0\.0\.0\.0):(\d+)")


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, client: httpx.Client) -> httpx.Response:
        content = (
            self.body
            if isinstance(self.body, bytes) or self.body is None
            else json.dumps(self.body).encode()
        )
        return client.request(self.method, self.path, content=content, headers=self.headers)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    nosniff: bool
    request_id: bool
    body: str


@dataclass(frozen=True)
class Case:
    name: str
    requests: tuple[Req, ...]


def normalise(
    response: httpx.Response, known_ports: set[int], upstreams: tuple[str, ...]
) -> Answer:
    def port(match: re.Match[str]) -> str:
        number = int(match.group(2))
        return match.group(0) if number in known_ports else f"{match.group(1)}:<port>"

    text = response.text
    for index, address in enumerate(upstreams):
        text = text.replace(address, f"<upstream{index + 1}>")
    return Answer(
        status=response.status_code,
        content_type=response.headers.get("content-type", ""),
        nosniff=response.headers.get("x-content-type-options") == "nosniff",
        request_id=bool(response.headers.get("x-toxiproxy-request-id")),
        body=_ADDRESS.sub(port, text),
    )


def run_case(
    client: httpx.Client, case: Case, known_ports: set[int], upstreams: tuple[str, ...]
) -> list[Answer]:
    clear(client)
    try:
        return [normalise(req.send(client), known_ports, upstreams) for req in case.requests]
    finally:
        clear(client)  # frees the fixed ports for the other server


def clear(client: httpx.Client) -> None:
    for name in client.get("/proxies").json():
        client.delete(f"/proxies/{name}")


def _proxy(name: str = "p", **extra: Any) -> Req:
    return Req(
        "POST", "/proxies", {"name": name, "upstream": "UP", "listen": "127.0.0.1:0", **extra}
    )


def _toxic_cases() -> list[Case]:
    cases: list[Case] = []
    for kind, attributes in TOXIC_ATTRIBUTES.items():
        path = "/proxies/p/toxics"
        full = {attr: 7 + i for i, attr in enumerate(attributes)}
        if kind == "slicer":
            full = {"average_size": 10, "size_variation": 3, "delay": 5}
        steps = [
            _proxy(),
            Req("POST", path, {"type": kind}),
            Req(
                "POST", path, {"type": kind, "name": "u", "stream": "upstream", "attributes": full}
            ),
            Req("GET", path),
            Req("GET", f"{path}/u"),
            Req("GET", f"{path}/{kind}_downstream"),
        ]
        if attributes:
            steps += [
                Req("POST", f"{path}/u", {"attributes": {attributes[0]: 11}}),
                Req("PATCH", f"{path}/u", {"toxicity": 0.5}),
                Req("POST", f"{path}/u", {"attributes": {attributes[-1]: "x"}}),
                Req("POST", path, {"type": kind, "name": "w", "attributes": {attributes[0]: "1"}}),
                Req("POST", path, {"type": kind, "name": "f", "attributes": {attributes[0]: 1.5}}),
                Req("POST", path, {"type": kind, "name": "n", "attributes": {attributes[0]: -1}}),
            ]
        steps += [
            Req("GET", f"{path}/u"),
            Req("DELETE", f"{path}/u"),
            Req("DELETE", f"{path}/u"),
            Req("GET", path),
            Req("GET", "/proxies/p"),
        ]
        cases.append(Case(f"toxic-{kind}", tuple(steps)))
    return cases


def corpus(fixed_port: int, other_port: int) -> list[Case]:
    """Every endpoint, every toxic type and the bad inputs. ``UP`` in a body is replaced
    by the upstream address; ``fixed_port``/``other_port`` are free loopback ports."""
    fixed, other = f"127.0.0.1:{fixed_port}", f"127.0.0.1:{other_port}"
    t = "/proxies/p/toxics"
    return [
        Case(
            "basics",
            (
                Req("GET", "/version"),
                Req("POST", "/version"),
                Req("GET", "/proxies"),
                Req("GET", "/nope"),
                Req("GET", "/"),
                Req("GET", "/proxies/"),
                Req("PUT", "/proxies"),
                Req("DELETE", "/reset"),
                Req("GET", "/metrics"),
                Req("POST", "/reset"),
                Req("POST", "/reset", b"garbage"),
                Req("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"}),
                Req("GET", "/nope", headers={"User-Agent": "Mozilla/5.0"}),
                Req("GET", "/proxies", headers={"User-Agent": "curl/8"}),
                Req("GET", "/version/"),
                Req("GET", "/proxies/p/toxics/"),
            ),
        ),
        Case(
            "create",
            (
                _proxy(),
                Req("GET", "/proxies"),
                Req("GET", "/proxies/p"),
                _proxy(),
                _proxy("q", enabled=False),
                Req(
                    "POST",
                    "/proxies",
                    {"name": "r", "upstream": "UP", "listen": f"localhost:{fixed_port}"},
                ),
                Req(
                    "POST",
                    "/proxies",
                    {
                        "name": "s",
                        "upstream": "UP",
                        "listen": f"localhost:{other_port}",
                        "enabled": False,
                    },
                ),
                Req("POST", "/proxies", {"name": "t", "upstream": "UP", "listen": fixed}),
                Req(
                    "POST",
                    "/proxies",
                    {"Name": "u", "UPSTREAM": "UP", "Listen": "127.0.0.1:0", "extra": 1},
                ),
                Req(
                    "POST",
                    "/proxies",
                    {"name": "v", "upstream": "UP", "listen": "127.0.0.1:0", "toxics": [1]},
                ),
                Req("GET", "/proxies"),
            ),
        ),
        Case(
            "create-bad",
            (
                Req("POST", "/proxies", {"upstream": "UP"}),
                Req("POST", "/proxies", {"name": "a"}),
                Req("POST", "/proxies", {}),
                Req("POST", "/proxies", {"name": "", "upstream": "UP"}),
                Req("POST", "/proxies", b""),
                Req("POST", "/proxies", b"not json"),
                Req("POST", "/proxies", b"{"),
                Req("POST", "/proxies", b'{"name": "a", "upstream": "UP",}'),
                Req("POST", "/proxies", b"null"),
                Req("POST", "/proxies", b"[1,2]"),
                Req("POST", "/proxies", b'"str"'),
                Req("POST", "/proxies", b"42"),
                Req("POST", "/proxies", {"name": 5, "upstream": "UP"}),
                Req("POST", "/proxies", {"name": "a", "upstream": ["UP"]}),
                Req("POST", "/proxies", {"name": "a", "upstream": "UP", "enabled": "yes"}),
                Req("POST", "/proxies", {"name": "a", "upstream": "UP", "enabled": 1}),
                Req("POST", "/proxies", {"name": "a", "upstream": "UP", "listen": 80}),
                Req("POST", "/proxies", {"name": "a", "upstream": "UP", "listen": "127.0.0.1:zz"}),
                Req(
                    "POST",
                    "/proxies",
                    {"name": "b", "upstream": "127.0.0.1", "listen": "127.0.0.1:0"},
                ),
                Req(
                    "POST",
                    "/proxies",
                    b'{"name": "c", "upstream": "UP", "listen": "127.0.0.1:0"} trailing',
                ),
                Req("GET", "/proxies"),
            ),
        ),
        Case(
            "json-syntax",
            tuple(
                Req("POST", "/proxies", raw)
                for raw in (
                    b"tru",
                    b"fals",
                    b"nul",
                    b"-",
                    b"-x",
                    b"1.x",
                    b"1ex",
                    b"1e+",
                    b"[1 2]",
                    b"[1,]",
                    b'{"a" 1}',
                    b'{"a":1 "b":2}',
                    b"{'a': 1}",
                    b'{"a": "\x01"}',
                    b'{"a": "\\q"}',
                    b'{"a": "\\u12g4"}',
                    b'{"a": "unterminated',
                    b"   ",
                    b"\x00",
                    b"\xc3\xa9",
                    b"NaN",
                    b'{"name": "x", "upstream": "UP"',
                )
            ),
        ),
        Case(
            "port-conflict",
            (
                Req("POST", "/proxies", {"name": "a", "upstream": "UP", "listen": fixed}),
                Req("POST", "/proxies", {"name": "b", "upstream": "UP", "listen": fixed}),
                Req(
                    "POST",
                    "/proxies",
                    {"name": "c", "upstream": "UP", "listen": fixed, "enabled": False},
                ),
                Req("POST", "/proxies/c", {"enabled": True}),
                Req("GET", "/proxies"),
            ),
        ),
        Case(
            "show-update-delete",
            (
                _proxy(),
                Req("GET", "/proxies/p"),
                Req("GET", "/proxies/missing"),
                Req("POST", "/proxies/p", {"enabled": False}),
                Req("POST", "/proxies/p", {"enabled": True}),
                Req("PATCH", "/proxies/p", {"listen": other}),
                Req("POST", "/proxies/p", {"listen": f"localhost:{other_port}"}),
                Req("POST", "/proxies/p", {"upstream": "UP2"}),
                Req("POST", "/proxies/p", {"name": "renamed"}),
                Req("POST", "/proxies/p", {}),
                Req("POST", "/proxies/p", b""),
                Req("POST", "/proxies/p", b"{bad"),
                Req("POST", "/proxies/p", {"enabled": 3}),
                Req("POST", "/proxies/p", {"listen": "127.0.0.1:zz"}),
                Req("GET", "/proxies/p"),
                Req("POST", "/proxies/missing", {"enabled": False}),
                Req("PUT", "/proxies/p", {}),
                Req("DELETE", "/proxies/p"),
                Req("DELETE", "/proxies/p"),
                Req("GET", "/proxies/p"),
                Req("GET", "/proxies/p/toxics"),
            ),
        ),
        Case(
            "toxic-errors",
            (
                _proxy(),
                Req("GET", "/proxies/missing/toxics"),
                Req("POST", "/proxies/missing/toxics", {"type": "latency"}),
                Req("GET", "/proxies/missing/toxics/x"),
                Req("GET", f"{t}/x"),
                Req("POST", f"{t}/x", {"toxicity": 1}),
                Req("DELETE", f"{t}/x"),
                Req("POST", t, {"type": "nope"}),
                Req("POST", t, {"type": ""}),
                Req("POST", t, {}),
                Req("POST", t, {"name": "only-name"}),
                Req("POST", t, {"type": 1}),
                Req("POST", t, {"type": "latency", "stream": "sideways"}),
                Req("POST", t, {"type": "latency", "stream": 1}),
                Req("POST", t, {"type": "latency", "stream": "UpStream"}),
                Req("POST", t, {"type": "latency"}),
                Req("POST", t, {"type": "latency"}),
                Req("POST", t, {"type": "slicer", "name": "latency_UpStream"}),
                Req(
                    "POST",
                    t,
                    {"type": "latency", "name": "latency_UpStream", "stream": "downstream"},
                ),
                Req("POST", t, {"type": "latency", "name": "t1", "toxicity": "1"}),
                Req("POST", t, {"type": "latency", "name": "t2", "toxicity": 0.1}),
                Req("POST", t, {"type": "latency", "name": "t3", "toxicity": -3}),
                Req("POST", t, {"type": "latency", "name": "t4", "toxicity": 1e300}),
                Req("POST", t, {"type": "latency", "name": "t5", "attributes": "x"}),
                Req(
                    "POST",
                    t,
                    {"type": "latency", "name": "t6", "attributes": {"Latency": 5, "JITTER": 2}},
                ),
                Req(
                    "POST",
                    t,
                    {"type": "latency", "name": "t7", "Latency": 5, "attributes": {"nope": 1}},
                ),
                Req(
                    "POST", t, {"type": "latency", "name": "t8", "attributes": {"latency": 10**30}}
                ),
                Req("POST", t, {"type": "latency", "name": "t9", "attributes": {"jitter": [1]}}),
                Req("POST", t, {"type": "latency", "name": "t10", "attributes": None}),
                Req(
                    "POST",
                    t,
                    {"Type": "latency", "Name": "t11", "Stream": "upstream", "Toxicity": 0.25},
                ),
                Req("POST", t, b""),
                Req("POST", t, b"{"),
                Req("POST", t, b"[]"),
                Req(
                    "POST",
                    f"{t}/t6",
                    {
                        "attributes": {"jitter": 9},
                        "name": "zz",
                        "type": "slicer",
                        "stream": "upstream",
                    },
                ),
                Req("POST", f"{t}/t6", b"{bad"),
                Req("POST", f"{t}/t6", b""),
                Req("POST", f"{t}/t6", {"toxicity": "x"}),
                Req("POST", f"{t}/t6", {"attributes": {"latency": 1.5}}),
                Req("POST", f"{t}/t6", {"attributes": "x"}),
                Req("POST", f"{t}/t6", {"attributes": [1]}),
                Req("POST", f"{t}/t6", {"toxicity": None, "attributes": None}),
                Req("GET", t),
            ),
        ),
        Case(
            "toxic-crash-guards",
            (
                _proxy(),
                Req("POST", t, {"type": "bandwidth", "attributes": {"rate": -1}}),
                Req("POST", t, {"type": "slicer", "name": "s0", "attributes": {"average_size": 0}}),
                Req(
                    "POST",
                    t,
                    {
                        "type": "slicer",
                        "name": "s1",
                        "attributes": {"average_size": 10, "size_variation": 11},
                    },
                ),
                Req(
                    "POST",
                    t,
                    {
                        "type": "slicer",
                        "name": "s2",
                        "attributes": {"average_size": 10, "size_variation": -1},
                    },
                ),
                Req("GET", t),
            ),
        ),
        *_toxic_cases(),
        Case(
            "populate",
            (
                Req("POST", "/populate", []),
                Req(
                    "POST",
                    "/populate",
                    [
                        {"name": "a", "upstream": "UP", "listen": "127.0.0.1:0"},
                        {"name": "b", "upstream": "UP", "listen": fixed, "enabled": False},
                    ],
                ),
                Req("POST", "/proxies/a/toxics", {"type": "latency"}),
                Req("POST", "/populate", [{"name": "b", "upstream": "UP", "listen": fixed}]),
                Req(
                    "POST", "/populate", [{"name": "a", "upstream": "UP2", "listen": "127.0.0.1:0"}]
                ),
                Req("GET", "/proxies"),
            ),
        ),
        Case(
            "populate-identical-keeps-toxics",
            (
                Req("POST", "/populate", [{"name": "a", "upstream": "UP", "listen": fixed}]),
                Req("POST", "/proxies/a/toxics", {"type": "latency"}),
                Req("POST", "/proxies/a", {"enabled": False}),
                Req("POST", "/populate", [{"name": "a", "upstream": "UP", "listen": fixed}]),
                Req("GET", "/proxies/a"),
            ),
        ),
        Case(
            "populate-bad",
            (
                Req(
                    "POST",
                    "/populate",
                    [
                        {"name": "a", "upstream": "UP", "listen": "127.0.0.1:0"},
                        {"name": "b", "listen": "127.0.0.1:0"},
                        {"name": "c", "upstream": "UP", "listen": "127.0.0.1:0"},
                    ],
                ),
                Req("POST", "/populate", [{"upstream": "UP"}, {"name": "x"}]),
                Req("GET", "/proxies"),
                Req(
                    "POST",
                    "/populate",
                    [
                        {"name": "a", "upstream": "UP", "listen": fixed},
                        {"name": "b", "upstream": "UP", "listen": fixed},
                        {"name": "c", "upstream": "UP", "listen": "127.0.0.1:0"},
                    ],
                ),
                Req("GET", "/proxies"),
                Req("POST", "/populate", {"name": "a", "upstream": "UP"}),
                Req("POST", "/populate", b""),
                Req("POST", "/populate", b"[{"),
                Req("POST", "/populate", [{"name": 1, "upstream": "UP"}]),
                Req("POST", "/populate", [{"name": "d", "upstream": "UP", "enabled": "no"}]),
                Req("POST", "/populate", [1]),
                Req("POST", "/populate", [None]),
                Req(
                    "POST",
                    "/populate",
                    [
                        {"name": "e", "upstream": "UP", "listen": "127.0.0.1:0"},
                        {"name": "e", "upstream": "UP", "listen": "127.0.0.1:0"},
                    ],
                ),
                Req("GET", "/proxies"),
            ),
        ),
        Case(
            "reset",
            (
                _proxy(),
                _proxy("q"),
                Req("POST", t, {"type": "latency", "attributes": {"latency": 5}}),
                Req("POST", "/proxies/q/toxics", {"type": "timeout", "stream": "upstream"}),
                Req("POST", "/proxies/q", {"enabled": False}),
                Req("POST", "/reset"),
                Req("GET", "/proxies"),
                Req("GET", t),
            ),
        ),
    ]


def substitute(case: Case, upstream: str, upstream2: str) -> Case:
    """Replace the ``UP``/``UP2`` placeholders in request bodies with real addresses."""

    def swap(body: Body) -> Body:
        if body is None:
            return body
        if isinstance(body, bytes):
            return body.replace(b'"UP"', json.dumps(upstream).encode())
        text = json.dumps(body).replace('"UP"', json.dumps(upstream))
        return json.loads(text.replace('"UP2"', json.dumps(upstream2)))  # type: ignore[no-any-return]

    return Case(
        case.name, tuple(Req(r.method, r.path, swap(r.body), r.headers) for r in case.requests)
    )
