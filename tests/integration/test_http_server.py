"""The Segment collection API on a real `marketloop serve` process, as SDKs and new users call it.

One server serves the whole module. Every accepted event is written down in
`Served.accepted` (by event name, or type for messages without one), and the
last tests stop the server and check that exactly those events were loaded.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import httpx
import pytest

from marketloop.testing.server import ServerProcess, cli, cli_json, create_source

pytestmark = pytest.mark.slow

PROBLEM_JSON = "application/problem+json"
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


@dataclass
class Served:
    server: ServerProcess
    client: httpx.Client
    key: str
    retired_key: str
    accepted: Counter[str] = field(default_factory=Counter)

    def post(self, path: str, body: Any, *, key: str | None = None, **options: Any) -> httpx.Response:
        """POST JSON with the write key as the HTTP Basic username, as Segment SDKs do."""
        key = self.key if key is None else key
        return self.client.post(path, json=body, auth=(key, ""), **options)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("http") / "data"
    key = create_source(data_dir, "mobile-banking")
    retired_key = create_source(data_dir, "retired-h5")
    server = ServerProcess(data_dir)
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            yield Served(server=server, client=client, key=key, retired_key=retired_key)
    finally:
        server.cleanup()


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["success"] is True
    return body


def _problem(response: httpx.Response, status: int, *, detail_has: str = "") -> dict[str, Any]:
    """Assert an RFC 9457 problem with this status, a type, a title and something to act on."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    assert problem["title"], problem
    assert problem.get("detail") or problem.get("errors"), f"nothing tells the user what to fix: {problem}"
    if detail_has:
        assert detail_has in problem.get("detail", ""), problem
    return problem


# -- what SDKs send ------------------------------------------------------------

SINGLE_MESSAGES = {
    "track": ({"userId": "C0001", "event": "fund_page_view", "properties": {"fund_code": "000001"}}, "fund_page_view"),
    "identify": ({"userId": "C0001", "traits": {"branch": "0101", "segment": "affluent"}}, "identify"),
    "page": ({"anonymousId": "a-7f3", "name": "wealth_home", "properties": {"path": "/wealth"}}, "wealth_home"),
    "screen": ({"userId": "C0001", "name": "card_detail"}, "card_detail"),
    "alias": ({"userId": "C0001", "previousId": "a-7f3"}, "alias"),
    "group": ({"userId": "C0001", "groupId": "branch-0101", "traits": {"city": "Hangzhou"}}, "group"),
}


@pytest.mark.parametrize("endpoint", SINGLE_MESSAGES)
def test_single_message_with_basic_auth(served: Served, endpoint: str) -> None:
    body, counted_as = SINGLE_MESSAGES[endpoint]
    assert _ok(served.post(f"/v1/{endpoint}", body)) == {"success": True}
    served.accepted[counted_as] += 1


def test_batch_of_mixed_types(served: Served) -> None:
    batch = [
        {"type": "track", "userId": "C0002", "event": "loan_apply_start", "timestamp": "2026-11-24T07:00:00Z"},
        {"type": "identify", "userId": "C0002", "traits": {"age_band": "30-39"}},
        {"type": "page", "anonymousId": "a-91", "name": "loan_calculator"},
    ]
    _ok(served.post("/v1/batch", {"batch": batch, "sentAt": "2026-11-24T07:00:05Z"}))
    served.accepted.update(["loan_apply_start", "identify", "loan_calculator"])


def test_write_key_in_the_body(served: Served) -> None:
    single = {"writeKey": served.key, "userId": "C0003", "event": "body_key_single"}
    _ok(served.client.post("/v1/track", json=single))
    batch = {"writeKey": served.key, "batch": [{"type": "track", "userId": "C0003", "event": "body_key_batch"}]}
    _ok(served.client.post("/v1/batch", json=batch))
    served.accepted.update(["body_key_single", "body_key_batch"])


def test_gzip_compressed_body(served: Served) -> None:
    batch = {"batch": [{"type": "track", "userId": f"C{n:04d}", "event": "gzipped"} for n in range(20)]}
    compressed = gzip.compress(json.dumps(batch).encode())
    response = served.client.post(
        "/v1/batch",
        content=compressed,
        auth=(served.key, ""),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    _ok(response)
    served.accepted["gzipped"] += 20


def test_duplicate_message_id_is_counted_once(served: Served) -> None:
    body = {"userId": "C0004", "event": "retried_by_sdk", "messageId": "sdk-retry-0001"}
    _ok(served.post("/v1/track", body))
    _ok(served.post("/v1/track", body))
    _ok(served.post("/v1/batch", {"batch": [{**body, "type": "track"}]}))
    served.accepted["retried_by_sdk"] += 1


# -- bad input, as a new user would send it -------------------------------------


@pytest.mark.parametrize("endpoint", ["track", "batch"])
def test_empty_body(served: Served, endpoint: str) -> None:
    response = served.client.post(f"/v1/{endpoint}", content=b"", auth=(served.key, ""))
    _problem(response, 400, detail_has="empty")


@pytest.mark.parametrize(("endpoint", "detail"), [("track", "not a JSON object"), ("batch", "not valid JSON")])
def test_invalid_json(served: Served, endpoint: str, detail: str) -> None:
    response = served.client.post(f"/v1/{endpoint}", content=b'{"userId": "C0001", "event": ', auth=(served.key, ""))
    _problem(response, 400, detail_has=detail)


def test_json_that_is_not_an_object(served: Served) -> None:
    _problem(served.post("/v1/track", ["C0001", "fund_page_view"]), 400)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"userId": ["C0001"], "event": "fund_page_view"}, "/userId"),
        ({"userId": "C0001", "event": 42}, "/event"),
        ({"userId": "C0001", "event": "fund_page_view", "properties": "fund_code=000001"}, "/properties"),
        ({"userId": "C0001"}, "/event"),
    ],
    ids=["userId as a list", "event as a number", "properties as a string", "no event name"],
)
def test_wrong_types_name_the_field(served: Served, body: dict[str, Any], pointer: str) -> None:
    problem = _problem(served.post("/v1/track", body), 400)
    assert [error["pointer"] for error in problem["errors"]] == [pointer]
    assert problem["errors"][0]["detail"]


def test_batch_where_nothing_is_valid_lists_every_error(served: Served) -> None:
    batch = [{"type": "track", "userId": "C0001"}, {"type": "shout", "userId": "C0001"}, {"type": "track"}]
    problem = _problem(served.post("/v1/batch", {"batch": batch}), 400)
    assert [(e["index"], e["pointer"]) for e in problem["errors"]] == [
        (0, "/batch/0/event"),
        (1, "/batch/1/type"),
        (2, "/batch/2/userId"),
    ]


def test_batch_that_is_not_a_list(served: Served) -> None:
    problem = _problem(served.post("/v1/batch", {"batch": {"type": "track"}}), 400)
    assert problem["errors"][0]["pointer"] == "/batch"


def test_unknown_write_key(served: Served) -> None:
    response = served.post("/v1/track", {"userId": "C0001", "event": "e"}, key="mlwk_not-a-real-key")
    _problem(response, 401, detail_has="No source has this write key")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_no_write_key_at_all(served: Served) -> None:
    response = served.client.post("/v1/track", json={"userId": "C0001", "event": "e"})
    _problem(response, 401, detail_has="writeKey")


def test_unknown_write_key_in_the_body(served: Served) -> None:
    response = served.client.post("/v1/batch", json={"writeKey": "mlwk_nope", "batch": [{"type": "track"}]})
    _problem(response, 401)


def test_oversized_event(served: Served) -> None:
    body = {"userId": "C0001", "event": "big", "properties": {"blob": "x" * MAX_EVENT_BYTES}}
    _problem(served.post("/v1/track", body), 413, detail_has=str(MAX_EVENT_BYTES))


def test_oversized_event_inside_a_batch_is_rejected_by_index(served: Served) -> None:
    big = {"type": "track", "userId": "C0001", "event": "big", "properties": {"blob": "x" * MAX_EVENT_BYTES}}
    small = {"type": "track", "userId": "C0001", "event": "beside_a_big_one"}
    body = _ok(served.post("/v1/batch", {"batch": [small, big]}))
    assert [(e["index"], e["pointer"]) for e in body["rejected"]] == [(1, "/batch/1")]
    served.accepted["beside_a_big_one"] += 1


def test_oversized_batch(served: Served) -> None:
    batch = [{"type": "track", "userId": "C0001", "event": "e", "properties": {"pad": "x" * 1000}}] * 600
    _problem(served.post("/v1/batch", {"batch": batch}), 413, detail_has=str(MAX_BATCH_BYTES))


def test_gzip_that_inflates_past_the_limit(served: Served) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (2 * MAX_BATCH_BYTES) + b"]}")
    response = served.client.post(
        "/v1/batch", content=bomb, auth=(served.key, ""), headers={"Content-Encoding": "gzip"}
    )
    _problem(response, 413)


def test_body_claiming_gzip_that_is_not(served: Served) -> None:
    response = served.client.post(
        "/v1/track",
        content=b'{"userId":"C0001","event":"e"}',
        auth=(served.key, ""),
        headers={"Content-Encoding": "gzip"},
    )
    _problem(response, 400, detail_has="gzip")


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/v1/track", 405), ("POST", "/v1/trak", 404)])
def test_wrong_method_or_path(served: Served, method: str, path: str, status: int) -> None:
    response = served.client.request(method, path, auth=(served.key, ""))
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["title"]


def test_ten_thousand_mixed_events_keep_the_good_ones(served: Served) -> None:
    rng = random.Random(7)
    good = {"type": "track", "userId": "u1", "event": "mx"}
    bad = {"type": "track", "userId": "u1"}  # no event name
    bad_indexes = sorted(rng.sample(range(10_000), 1_234))
    bad_set = set(bad_indexes)
    batch = [bad if n in bad_set else good for n in range(10_000)]
    content = json.dumps({"batch": batch}, separators=(",", ":")).encode()
    assert len(content) < MAX_BATCH_BYTES, "the test batch itself must fit the limit"

    response = served.client.post(
        "/v1/batch", content=content, auth=(served.key, ""), headers={"Content-Type": "application/json"}
    )
    body = _ok(response)
    assert body["accepted"] == 10_000 - 1_234
    rejected = body["rejected"]
    assert [e["index"] for e in rejected] == bad_indexes
    assert {e["pointer"] for e in rejected} == {f"/batch/{n}/event" for n in bad_indexes}
    assert all("event name" in e["detail"] for e in rejected)
    served.accepted["mx"] += 10_000 - 1_234


def test_events_cli_refuses_to_open_the_event_log_while_serving(served: Served) -> None:
    done = cli(served.server.data_dir, "events", "count", check=False)
    assert done.returncode == 6
    assert "in use" in done.stderr


def test_key_disabled_while_serving_is_refused_after_the_cache_time(served: Served) -> None:
    probe = {"userId": "C0009", "event": "before_disable"}
    _ok(served.post("/v1/track", probe, key=served.retired_key))
    served.accepted["before_disable"] += 1
    cli(served.server.data_dir, "sources", "disable", "retired-h5")
    # The server caches a key lookup for 2 s. A fixed wait, not polling: every 200 while polling would be one
    # more accepted event to account for.
    time.sleep(2.2)
    _problem(served.post("/v1/track", probe, key=served.retired_key), 401, detail_has="disabled")


# -- stop, then count ----------------------------------------------------------


@pytest.fixture(scope="module")
def stopped(served: Served) -> int:
    """Stop the module's server with SIGTERM (once); its exit code."""
    return served.server.stop()


def test_sigterm_stops_the_server_with_exit_code_0(served: Served, stopped: int) -> None:
    assert stopped == 0, f"exit code {stopped}:\n{served.server.output()}"


def test_everything_accepted_is_loaded_once(served: Served, stopped: int) -> None:
    assert stopped == 0, f"exit code {stopped}:\n{served.server.output()}"
    data_dir = served.server.data_dir
    assert cli_json(data_dir, "events", "count") == {"count": sum(served.accepted.values())}
    with duckdb.connect(str(data_dir / "warehouse" / "events.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT coalesce(event, type), count(*) FROM events GROUP BY ALL").fetchall()
        duplicates = db.execute("SELECT message_id FROM events GROUP BY 1 HAVING count(*) > 1").fetchall()
    assert dict(rows) == dict(served.accepted)
    assert duplicates == []
