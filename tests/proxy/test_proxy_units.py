"""Unit tests: Go-compatible JSON, address parsing, the slicer's cuts, channels."""

from __future__ import annotations

import asyncio

import pytest

from harness.proxy.addr import display, split_host_port
from harness.proxy.channel import Channel, Chunk
from harness.proxy.gojson import GoJsonError, decode_struct, dumps, format_float32, loads
from harness.proxy.goscan import GoSyntaxError, scan_first_value
from harness.proxy.toxics.timing import SlicerToxic


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (0.0, "0"),
        (-3.0, "-3"),
        (1e-7, "1e-07"),
        (1e21, "1e+21"),
    ],
)
def test_float32_like_go(value: float, text: str) -> None:
    assert format_float32(value) == text


def test_decode_is_case_insensitive_last_key_wins_and_typed() -> None:
    fields = {"latency": "int64", "jitter": "int64"}
    doc = loads(b'{"Latency": 5, "latency": 7, "JITTER": 2, "other": "x"}')
    assert decode_struct(doc, fields, "LatencyToxic", "t") == {"latency": 7, "jitter": 2}  # type: ignore[arg-type]
    with pytest.raises(
        GoJsonError,
        match=r"cannot unmarshal number 1\.0 into Go struct field L\.latency of type int64",
    ):
        decode_struct(loads(b'{"latency": 1.0}'), fields, "L", "t")  # type: ignore[arg-type]
    with pytest.raises(GoJsonError, match="EOF"):
        loads(b"  ")
    with pytest.raises(GoJsonError, match="invalid character 'x'"):
        loads(b"x")
    assert loads(b'{"a": 1} trailing') is not None  # Decoder.Decode reads one value


def test_dumps_escapes_like_go() -> None:
    assert (
        dumps({"a": "<&>", "b": [1, True, None]})
        == '{"a":"\\u003c\\u0026\\u003e","b":[1,true,null]}'
    )


def test_split_host_port() -> None:
    assert split_host_port("localhost:80") == ("localhost", 80)
    assert split_host_port("[::1]:5") == ("::1", 5)
    assert split_host_port(":7") == ("", 7)
    assert display("", 7) == "[::]:7"
    for bad in ("nohost", "a:b:c", "h:99999", "[::1]"):
        with pytest.raises(ValueError, match="address"):
            split_host_port(bad)


@pytest.mark.parametrize(("average", "variation"), [(1, 0), (3, 3), (1024, 512), (10, 0)])
def test_slicer_cuts_cover_the_chunk(average: int, variation: int) -> None:
    toxic = SlicerToxic()
    toxic.attrs.update(average_size=average, size_variation=variation)
    for size in (1, 2, 24, 1000, 32768):
        cuts = toxic.cuts(size)
        assert cuts[-1] == size
        pieces = [b - a for a, b in zip([0, *cuts], cuts, strict=False)]
        assert all(0 < piece <= average + variation or piece == 1 for piece in pieces)
    assert len(SlicerToxic.cuts(_with(1, 0), 24)) == 24


def _with(average: int, variation: int) -> SlicerToxic:
    toxic = SlicerToxic()
    toxic.attrs.update(average_size=average, size_variation=variation)
    return toxic


def test_channel_cancelled_getter_loses_nothing() -> None:
    async def scenario() -> list[bytes]:
        channel = Channel(4)
        getter = asyncio.ensure_future(channel.get())
        await asyncio.sleep(0)
        channel.push(Chunk(b"a", 0.0))
        getter.cancel()  # the item was made available but not yet taken
        with pytest.raises(asyncio.CancelledError):
            await getter
        return [item.data for item in channel.drain()]

    assert asyncio.run(scenario()) == [b"a"]


@pytest.mark.parametrize(
    ("body", "message"),
    [  # the real Toxiproxy's words (tests/proxy/test_proxy_differential.py checks them all)
        (b"not json", "invalid character 'o' in literal null (expecting 'u')"),
        (b'{"a": 1,}', "invalid character '}' looking for beginning of object key string"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b"1.x", "invalid character 'x' after decimal point in numeric literal"),
        (b'"\x01"', "invalid character '\\x01' in string literal"),
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b"[1", "unexpected EOF"),
    ],
)
def test_go_syntax_errors(body: bytes, message: str) -> None:
    with pytest.raises(GoSyntaxError) as caught:
        scan_first_value(body)
    assert str(caught.value) == message


def test_go_decoder_reads_only_the_first_value() -> None:
    assert scan_first_value(b'  {"a": [1, "x"]} trailing') == (2, 17)
    assert scan_first_value(b"01") == (0, 1)


def test_runtime_metrics_count_open_fds() -> None:
    import re

    from harness.proxy.metrics import Metrics

    text = Metrics(runtime_metrics=True).render()
    match = re.search(r"^process_open_fds (\d+)$", text, re.M)
    assert match and int(match.group(1)) > 0, text
