"""Concurrent writes to one object: the outcome is that of one serial order, and answers are true.

Generated from the ProcessOut route table: every route whose methods include POST, PUT, PATCH or
DELETE and whose path names an object (``{invoice_id}``, ``{customer_id}``, ...) is a write on
that object. A new write route joins by registering (``test_every_write_route_is_registered``
fails, saying what to add, until it is):

- ``VARIANTS[(method, path)]``: the ``(label, body)`` variants to race (``None``: no body);
- its path parameter in ``KINDS`` if the object kind is new: how to create a fresh one, and
  the GET (with expansions) that shows everything a write on it affects;
- or, for a write without an object id (a create), ``CREATES[(method, path)]``.

**Pair races.** For every pair of registered writes on one kind of object (a write paired with
itself included), ``ROUNDS`` rounds of: create three identical fresh objects; on the first send
A and B at once (each on its own keep-alive connection, taken before either is written, then
written back to back; with 2 workers, through different workers); on the second apply A then
B; on the third B then A; read the final state of each ("404" for a deleted object). The server
is its own oracle: the concurrent outcome (answer to A, answer to B, final state) must equal
the outcome of one of the two serial orders, compared after normalising what differs between
any two identical runs (ids of objects the requests made, timestamps, versions, error
messages); status codes, error types and every other value must match exactly.

**Keyed retries.** For every write route (creates too): ``KEYED_COPIES`` identical requests with
one Idempotency-Key at once must get identical answers (status and body), all but one marked
``Idempotent-Replayed: true``, with the effect of the request applied once (compared with a
fresh object the request was applied to once, without a key; for a create, one more row).

Both backends x 1 and 2 worker processes (``settle serve --workers N`` child processes, one per
configuration for the module). ``SETTLE_RACE_ROUNDS`` and ``SETTLE_RACE_KEYED_ROUNDS`` change
the number of rounds for a longer soak; ``pytest -s`` shows one summary line per configuration.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from settle.api.processout.routes import ROUTES
from tests.concurrency import CONFIGS, Client, Reply, Target, gather_limited, serve
from tests.dbcheck import query

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("SETTLE_RACE_ROUNDS", "12"))
KEYED_ROUNDS = int(os.environ.get("SETTLE_RACE_KEYED_ROUNDS", "4"))
KEYED_COPIES = 8
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SHOWN_ROUNDS = 3  # rounds described in full in a failure message

Body = dict[str, Any] | None
CUSTOMER = "$customer"  # in a body: a customer of the same project (made once per server)


@dataclass(frozen=True)
class Kind:
    """An object kind, by the path parameter that names it."""

    name: str
    create_path: str
    create_body: dict[str, Any]
    response_key: str  # the object in a create's answer: {"success": true, "<key>": {...}}
    read_path: str  # "{id}" is the object's id
    read_params: dict[str, str] = field(default_factory=dict)  # what the writes affect


KINDS: dict[str, Kind] = {
    "invoice_id": Kind(
        "invoice",
        "/invoices",
        {
            "name": "race",
            "amount": "2.00",
            "currency": "EUR",
            "details": [{"name": "a", "amount": "2.00"}],
        },
        "invoice",
        "/invoices/{id}",
        {"expand": "transaction,customer"},
    ),
    "customer_id": Kind(
        "customer",
        "/customers",
        {"currency": "EUR", "balance": "1.00", "email": "race@example.com", "first_name": "Ra"},
        "customer",
        "/customers/{id}",
    ),
}

# Every write route on an object: the bodies raced, each with a short label (unique per kind).
VARIANTS: dict[tuple[str, str], list[tuple[str, Body]]] = {
    ("PUT", "/customers/{customer_id}"): [
        ("put-jpy15", {"currency": "JPY", "balance": "15"}),
        ("put-bal7.5", {"balance": "7.5"}),
        ("put-email", {"email": "x@example.com"}),
        # Refused while a balance exists and no new balance comes with it.
        ("put-usd", {"currency": "USD"}),
    ],
    ("DELETE", "/customers/{customer_id}"): [("delete", None)],
    ("PUT", "/invoices/{invoice_id}"): [
        ("put-3.45-details", {"amount": "3.45", "details": [{"amount": "3.45", "name": "a"}]}),
        ("put-1.45", {"amount": "1.45"}),
        ("put-tax", {"tax": {"amount": "0.10"}}),
    ],
    ("DELETE", "/invoices/{invoice_id}"): [("delete", None)],
    ("POST", "/invoices/{invoice_id}/customers"): [("assign", {"customer_id": CUSTOMER})],
}


@dataclass(frozen=True)
class Create:
    body: dict[str, Any]
    table: str  # rows counted: one more per keyed request, however many copies
    param: str  # the kind made (KINDS key), to read it back


# Every write route without an object id.
CREATES: dict[tuple[str, str], Create] = {
    ("POST", "/invoices"): Create(
        {"name": "keyed", "amount": "4.20", "currency": "EUR", "customer_id": CUSTOMER},
        "invoices",
        "invoice_id",
    ),
    ("POST", "/customers"): Create(
        {"email": "keyed@example.com", "currency": "EUR", "balance": "3.00"},
        "customers",
        "customer_id",
    ),
}


# --- the route table ----------------------------------------------------------------------


def write_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, path parameters) of every write route, in table order."""
    found = []
    for route in ROUTES:
        if not isinstance(route, Route):  # checked in test_every_write_route_is_registered
            continue
        for method in sorted((route.methods or set()) & WRITE_METHODS):
            found.append((method, route.path, tuple(route.param_convertors)))
    return found


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    param: str
    label: str
    body: Body

    def url(self, object_id: str) -> str:
        return self.path.replace("{" + self.param + "}", object_id)

    def describe(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body)
        return f"{self.method} {self.path} [{self.label}]{body}"


def registered_ops() -> list[Op]:
    ops = []
    for method, path, params in write_routes():
        if len(params) == 1 and params[0] in KINDS:
            for label, body in VARIANTS.get((method, path), []):
                ops.append(Op(method, path, params[0], label, body))
    return ops


def pairs() -> list[tuple[Op, Op]]:
    by_param: dict[str, list[Op]] = {}
    for op in registered_ops():
        by_param.setdefault(op.param, []).append(op)
    return [pair for ops in by_param.values() for pair in combinations_with_replacement(ops, 2)]


def pair_id(pair: tuple[Op, Op]) -> str:
    a, b = pair
    return f"{KINDS[a.param].name}:{a.label}+{b.label}"


def keyed_routes() -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, params in write_routes()
        if (method, path) in (VARIANTS if params else CREATES)
    ]


def test_every_write_route_is_registered() -> None:
    problems = []
    seen: set[tuple[str, str]] = set()
    for route in ROUTES:
        if not isinstance(route, Route):
            problems.append(f"{route!r} is not a plain Route: teach test_races.py about it")
    for method, path, params in write_routes():
        seen.add((method, path))
        if not params:
            if (method, path) not in CREATES:
                problems.append(
                    f"{method} {path} writes without an object id: register it in CREATES "
                    "(the body of one create, the table it adds a row to, the kind it makes)"
                )
            continue
        if len(params) != 1 or params[0] not in KINDS:
            problems.append(
                f"{method} {path}: path parameter(s) {list(params)} name no registered object "
                "kind: add it to KINDS (how to create a fresh object, how to read its state)"
            )
        if not VARIANTS.get((method, path)):
            problems.append(
                f"{method} {path} writes to an object but has no registered variants: add "
                f"VARIANTS[({method!r}, {path!r})] = [(label, body), ...] so it is raced "
                "against every other write on the same object"
            )
    for stale in (VARIANTS.keys() | CREATES.keys()) - seen:
        problems.append(f"{stale} is registered but is no write route of the table any more")
    labels = Counter(pair_id((op, op)) for op in registered_ops())
    problems += [f"label {name} is not unique" for name, n in labels.items() if n > 1]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --- normalising and comparing outcomes -------------------------------------------------------

_ID_RE = re.compile(r"\b([a-z]+(?:_[a-z]+)*)_[0-9A-Za-z]{32}\b")
_VOLATILE_KEYS = frozenset({"created_at", "updated_at", "version"})

Wire = dict[str, Any]  # {"status": 200, "body": <JSON or text>}


def wire(response: Reply) -> Wire:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


class Normaliser:
    """Replaces ids by ``<kind#n>`` in order of first appearance (so the same id stays the same
    placeholder across the documents of one outcome), except the ids in ``stable``; drops
    timestamps, versions and error messages."""

    def __init__(self, stable: dict[str, str]) -> None:
        self.names = dict(stable)
        self.count = 0

    def _id(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if found not in self.names:
            self.names[found] = f"<{match.group(1)}#{self.count}>"
            self.count += 1
        return self.names[found]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _ID_RE.sub(self._id, value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            error = value.get("success") is False
            return {
                k: "<volatile>" if k in _VOLATILE_KEYS and v is not None else self(v)
                for k, v in value.items()
                if not (error and k == "message")
            }
        return value


def normalise(documents: dict[str, Wire], stable: dict[str, str]) -> dict[str, Wire]:
    norm = Normaliser(stable)
    return {name: norm(doc) for name, doc in documents.items()}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def differences(got: Any, want: Any, limit: int = 8) -> str:
    a, b = flatten(got), flatten(want)
    missing = object()
    diffs = [
        f"{path}: {a.get(path, missing)!r} (expected {b.get(path, missing)!r})"
        for path in sorted(a.keys() | b.keys())
        if a.get(path, missing) != b.get(path, missing)
    ]
    shown = "; ".join(diffs[:limit]).replace(repr(missing), "<absent>")
    return shown + (f"; ... {len(diffs) - limit} more" if len(diffs) > limit else "")


def status_of(doc: Wire) -> str:
    body = doc["body"]
    error = body.get("error_type") if isinstance(body, dict) else None
    return f"{doc['status']}" + (f" {error}" if error else "")


def outcome_differences(got: dict[str, Wire], want: dict[str, Wire]) -> str:
    """Per document: its status if that differs, else the values of its body that differ."""
    parts = []
    for name in got:
        if status_of(got[name]) != status_of(want[name]):
            parts.append(f"{name} {status_of(got[name])} (expected {status_of(want[name])})")
        elif got[name] != want[name]:
            parts.append(f"{name}: {differences(got[name]['body'], want[name]['body'])}")
    return "; ".join(parts)


def headline(outcome: dict[str, Wire]) -> str:
    """``A 200, B 400 request.validation.invalid, final 404 ...``: the statuses at a glance."""
    return ", ".join(f"{name} {status_of(doc)}" for name, doc in outcome.items())


# --- the server, the shared objects ------------------------------------------------------------


@dataclass
class Stats:
    cases: int = 0  # pairs, or routes
    rounds: int = 0
    anomalies: int = 0  # rounds that went wrong
    across: int = 0  # rounds whose concurrent requests were answered by different workers
    failed: dict[str, str] = field(default_factory=dict)  # case -> "anomalies/rounds"

    def line(self, what: str) -> str:
        per = f" ({what} x {self.rounds // self.cases} rounds)" if self.cases else ""
        failed = ", ".join(f"{case} {n}" for case, n in self.failed.items()) or "none"
        return (
            f"{self.cases} {what}{per}: {self.rounds} rounds run, {self.anomalies} anomalies,"
            f" {self.across} rounds across 2 workers; failing: {failed}"
        )


@dataclass
class Racing:
    target: Target
    fills: dict[str, str]  # placeholder -> id
    stable: dict[str, str]  # ids kept as they are in normalised outcomes
    races: Stats = field(default_factory=Stats)
    keyed: Stats = field(default_factory=Stats)

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fills.get(value, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value


@pytest.fixture(scope="module", params=CONFIGS)
def racing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Racing]:
    backend, workers = request.param
    began = time.monotonic()
    tmp: Path = tmp_path_factory.mktemp(f"races-{backend}-{workers}w")
    with serve(backend, workers, tmp) as target:
        with httpx.Client(base_url=target.url, auth=target.auth, timeout=30) as c:
            made = c.post("/customers", json={"email": "shared@example.com"})
            assert made.status_code == 200, made.text
        customer_id = made.json()["customer"]["id"]
        project_id = target.keys.project.id
        s = Racing(
            target,
            fills={CUSTOMER: customer_id},
            stable={customer_id: customer_id, project_id: project_id},
        )
        yield s
    took = time.monotonic() - began
    print(f"\n[races {target.label}] pair races: {s.races.line('pairs')}", end="")
    print(f"\n[races {target.label}] keyed retries: {s.keyed.line('write routes')}", end="")
    print(f"\n[races {target.label}] {took:.1f} s, server start included")


async def create(client: Client, s: Racing, kind: Kind) -> str:
    made = await client.post(kind.create_path, json=s.fill(kind.create_body))
    assert made.status_code == 200, made.text
    object_id: str = made.json()[kind.response_key]["id"]
    return object_id


async def read(client: Client, kind: Kind, object_id: str) -> Wire:
    return wire(await client.get(kind.read_path.format(id=object_id), params=kind.read_params))


async def send(
    client: Client, s: Racing, op: Op, object_id: str, headers: dict[str, str] | None
) -> Reply:
    if op.body is None:
        return await client.request(op.method, op.url(object_id), headers=headers)
    return await client.request(op.method, op.url(object_id), json=s.fill(op.body), headers=headers)


# --- pair races ----------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    observed: dict[str, Wire]
    a_then_b: dict[str, Wire]
    b_then_a: dict[str, Wire]
    workers: tuple[int | None, int | None]  # the processes that answered A and B at once

    @property
    def ok(self) -> bool:
        return self.observed in (self.a_then_b, self.b_then_a)

    def describe(self) -> str:
        finals = (self.a_then_b["final"], self.b_then_a["final"])
        what = (
            "answers untrue to the serial order its final state comes from"
            if self.observed["final"] in finals
            else "final state of no serial order"
        )
        return "\n".join(
            [
                f"  round {self.number}: {what}"
                + (f" (A, B answered by workers {self.workers})" if self.workers[0] else ""),
                f"    observed (A || B): {headline(self.observed)}",
                f"    A then B:          {headline(self.a_then_b)}",
                f"    B then A:          {headline(self.b_then_a)}",
                f"    vs A then B: {outcome_differences(self.observed, self.a_then_b)}",
                f"    vs B then A: {outcome_differences(self.observed, self.b_then_a)}",
            ]
        )


async def race_pair(s: Racing, a: Op, b: Op, rounds: int) -> list[Round]:
    kind = KINDS[a.param]
    async with s.target.client() as client:
        ids = await gather_limited(create(client, s, kind) for _ in range(3 * rounds))
        # The races, one at a time: nothing else is in flight while A and B meet.
        raced: list[tuple[Reply, Reply]] = []
        for r in range(rounds):
            obj = ids[3 * r]
            ra, rb = await client.together(
                [
                    (a.method, a.url(obj), s.fill(a.body), {}),
                    (b.method, b.url(obj), s.fill(b.body), {}),
                ],
                rotate=r,  # with 2 workers, A goes to each in turn
            )
            raced.append((ra, rb))

        async def serial(first: Op, second: Op, obj: str) -> tuple[Reply, ...]:
            one = await send(client, s, first, obj, None)
            return one, await send(client, s, second, obj, None)

        serials = await gather_limited(
            [serial(a, b, ids[3 * r + 1]) for r in range(rounds)]
            + [serial(b, a, ids[3 * r + 2]) for r in range(rounds)]
        )
        ab, ba = serials[:rounds], serials[rounds:]
        finals = await gather_limited(read(client, kind, i) for i in ids)
    results = []
    for r in range(rounds):

        def outcome(ra: Reply, rb: Reply, i: int) -> dict[str, Wire]:
            docs = {"A": wire(ra), "B": wire(rb), "final": finals[i]}
            return normalise(docs, {**s.stable, ids[i]: f"<this {kind.name}>"})

        results.append(
            Round(
                r,
                observed=outcome(*raced[r], 3 * r),
                a_then_b=outcome(ab[r][0], ab[r][1], 3 * r + 1),
                b_then_a=outcome(ba[r][1], ba[r][0], 3 * r + 2),
                workers=(raced[r][0].worker, raced[r][1].worker),
            )
        )
    return results


@pytest.mark.parametrize("pair", pairs(), ids=pair_id)
def test_concurrent_writes_equal_a_serial_order(racing: Racing, pair: tuple[Op, Op]) -> None:
    a, b = pair
    results = asyncio.run(race_pair(racing, a, b, ROUNDS))
    bad = [r for r in results if not r.ok]
    racing.races.cases += 1
    racing.races.rounds += len(results)
    racing.races.anomalies += len(bad)
    racing.races.across += sum(r.workers[0] != r.workers[1] for r in results)
    if not bad:
        return
    racing.races.failed[pair_id(pair)] = f"{len(bad)}/{len(results)}"
    kind = KINDS[a.param]
    pytest.fail(
        "\n".join(
            [
                f"{racing.target.label}: in {len(bad)} of {len(results)} rounds (rounds"
                f" {', '.join(str(r.number) for r in bad)}), A and B sent at once to one fresh"
                f" {kind.name} (created with {json.dumps(kind.create_body)}) gave an outcome"
                " that neither serial order gives",
                f"  A = {a.describe()}",
                f"  B = {b.describe()}",
                f"  final state: GET {kind.read_path} {kind.read_params or ''}",
                *(r.describe() for r in bad[:SHOWN_ROUNDS]),
            ]
        ),
        pytrace=False,
    )


# --- keyed retries -------------------------------------------------------------------------


async def count_rows(s: Racing, table: str) -> int:
    rows = await asyncio.to_thread(
        query,
        s.target.database_url,
        f"SELECT count(*) FROM {table} WHERE project_id = $1",
        s.target.keys.project.id,
    )
    return int(rows[0][0])


@dataclass
class Keyed:
    answers: list[Reply]
    observed: dict[str, Wire]  # the first answer, and the final state
    expected: dict[str, Wire]  # the same, of the request sent once without a key
    effect_problem: str | None = None


def answer_label(r: Reply) -> str:
    body = wire(r)["body"]
    error = body.get("error_type") if isinstance(body, dict) else None
    replayed = " (replayed)" if r.headers.get("idempotent-replayed") == "true" else ""
    return f"{r.status_code}{' ' + error if error else ''}{replayed}"


async def keyed_create(
    s: Racing, client: Client, method: str, path: str, headers: dict[str, str]
) -> Keyed:
    spec = CREATES[(method, path)]
    kind = KINDS[spec.param]
    body = s.fill(spec.body)

    async def made(r: Reply) -> Wire:
        if r.status_code != 200:
            return {"status": None, "body": "nothing made"}
        return await read(client, kind, r.json()[kind.response_key]["id"])

    once = await client.request(method, path, json=body)
    expected = normalise({"answer": wire(once), "final": await made(once)}, s.stable)
    before = await count_rows(s, spec.table)
    answers = await client.together([(method, path, body, headers)] * KEYED_COPIES)
    after = await count_rows(s, spec.table)
    observed = normalise({"answer": wire(answers[0]), "final": await made(answers[0])}, s.stable)
    problem = None if after - before == 1 else f"{after - before} {spec.table} rows made, not 1"
    return Keyed(answers, observed, expected, problem)


async def keyed_write(
    s: Racing, client: Client, method: str, path: str, headers: dict[str, str]
) -> Keyed:
    param = next(ps[0] for m, p, ps in write_routes() if (m, p) == (method, path))
    kind = KINDS[param]
    op = Op(method, path, param, *VARIANTS[(method, path)][0])
    subject, twin = await asyncio.gather(create(client, s, kind), create(client, s, kind))
    once = await send(client, s, op, twin, None)
    expected = normalise(
        {"answer": wire(once), "final": await read(client, kind, twin)},
        {**s.stable, twin: f"<this {kind.name}>"},
    )
    answers = await client.together(
        [(method, op.url(subject), s.fill(op.body), headers)] * KEYED_COPIES
    )
    observed = normalise(
        {"answer": wire(answers[0]), "final": await read(client, kind, subject)},
        {**s.stable, subject: f"<this {kind.name}>"},
    )
    return Keyed(answers, observed, expected)


async def keyed_round(
    s: Racing, client: Client, method: str, path: str, number: int
) -> tuple[str | None, bool]:
    """One round: what went wrong (or None), and whether several workers answered."""
    key = f"race-{uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key}
    run = keyed_create if (method, path) in CREATES else keyed_write
    k = await run(s, client, method, path, headers)
    across = len({r.worker for r in k.answers}) > 1
    problems = []
    distinct = {(r.status_code, r.content) for r in k.answers}
    if len(distinct) > 1:
        tally = Counter(answer_label(r) for r in k.answers)
        problems.append(
            f"{len(distinct)} different answers to {KEYED_COPIES} identical keyed requests: "
            + ", ".join(f"{n} x {what}" for what, n in tally.most_common())
        )
    fresh = [r for r in k.answers if r.headers.get("idempotent-replayed") != "true"]
    if len(fresh) != 1:
        problems.append(f"{len(fresh)} answers without Idempotent-Replayed: true, not 1")
    if k.effect_problem:
        problems.append(k.effect_problem)
    if k.observed != k.expected:
        problems.append(
            "the (first) answer or the final state differs from those of the request sent"
            f" once without a key: {outcome_differences(k.observed, k.expected)}"
        )
    if not problems:
        return None, across
    return f"  round {number} (key {key}): " + "; ".join(problems), across


async def keyed_rounds(
    s: Racing, method: str, path: str, rounds: int
) -> list[tuple[str | None, bool]]:
    async with s.target.client() as client:
        return [await keyed_round(s, client, method, path, r) for r in range(rounds)]


@pytest.mark.parametrize("route", keyed_routes(), ids=lambda r: f"{r[0]} {r[1]}")
def test_keyed_retries_at_once_answer_alike_with_one_effect(
    racing: Racing, route: tuple[str, str]
) -> None:
    method, path = route
    results = asyncio.run(keyed_rounds(racing, method, path, KEYED_ROUNDS))
    bad = [problem for problem, _ in results if problem is not None]
    racing.keyed.cases += 1
    racing.keyed.rounds += len(results)
    racing.keyed.anomalies += len(bad)
    racing.keyed.across += sum(across for _, across in results)
    if not bad:
        return
    racing.keyed.failed[f"{method} {path}"] = f"{len(bad)}/{len(results)}"
    body = CREATES[route].body if route in CREATES else VARIANTS[route][0][1]
    pytest.fail(
        f"{racing.target.label}: {method} {path} {json.dumps(body) if body else ''} sent"
        f" {KEYED_COPIES} times at once with one Idempotency-Key: {len(bad)} of {len(results)}"
        " rounds went wrong\n" + "\n".join(bad),
        pytrace=False,
    )
