"""Hand-written OTLP JSON requests, as a non-Python exporter would send them."""

from __future__ import annotations

from typing import Any

TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_ID = "eee19b7ec3c1b174"
CHILD_ID = "eee19b7ec3c1b173"


def json_request(service: str = "json-svc", note_id: int = 7) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "host.name", "value": {"stringValue": "box"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual", "version": "1"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": ROOT_ID,
                                "parentSpanId": "",
                                "name": "POST /notes",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "note.id", "value": {"intValue": str(note_id)}},
                                    {"key": "http.status", "value": {"intValue": 201}},
                                    {"key": "ratio", "value": {"doubleValue": 0.5}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "a"},
                                                    {"stringValue": "b"},
                                                ]
                                            }
                                        },
                                    },
                                ],
                                "status": {"code": 1},
                                "someFutureField": {"ignored": True},
                            },
                            {
                                "traceId": TRACE_ID,
                                "spanId": CHILD_ID,
                                "parentSpanId": ROOT_ID,
                                "name": "note.enqueue",
                                "kind": "SPAN_KIND_PRODUCER",
                                "startTimeUnixNano": "1544712660300000000",
                                "endTimeUnixNano": "1544712660800000000",
                                "events": [
                                    {
                                        "timeUnixNano": "1544712660500000000",
                                        "name": "enqueued",
                                        "attributes": [
                                            {"key": "queue", "value": {"stringValue": "notes"}}
                                        ],
                                    }
                                ],
                                "status": {"code": 2, "message": "boom"},
                            },
                        ],
                    }
                ],
            }
        ]
    }
