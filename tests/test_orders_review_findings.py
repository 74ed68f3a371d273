"""A hostile review of the exactly-once orders flow (issue 11 §1-2 and §6, the orders side of issue 13).

Each test is one reproduction of a defect a review found: it states the scenario, what a user must
be able to rely on, and asserts exactly that.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flow_helpers import add_orders, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.config import ConnectorSettings, FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.mapping import MappingConfig, OrderMapper
from scayle_orderwise.orderwise.exports import ExportDefinitions
from scayle_orderwise.sandbox import Faults, Sandbox, SimulatedCrash
from scayle_orderwise.sandbox.clock import VirtualClock
from scayle_orderwise.store import MemoryStore, SqliteStore, State

# An installation's own export definition ids, as an administrator creates them (never 101-106).
INSTALLATION_EXPORTS = {
    "order_changes": 31,
    "order_by_reference": 32,
    "stock_changes": 33,
    "order_details": 34,
}


def _frozen_sandbox(**kwargs: Any) -> Sandbox:
    return stocked_sandbox(clock=VirtualClock(frozen=True), **kwargs)


def _reference_keys(sandbox: Sandbox) -> dict[int, Any]:
    return {oid: order.get("referenceKey") for oid, order in sandbox.scayle.orders.items()}


# ------------------------------------------------------------------ 1. the batch lookup in production


def test_a_real_installation_configured_as_documented_gets_its_orders() -> None:
    """A user configures the four required export definitions, as docs/configuration.md says.

    ``Connector.from_settings`` fills ``orders_by_references`` with the sandbox's id 106 (the
    settings refuse the key, so it cannot be set or switched off). On an installation without a
    definition 106 every batch lookup fails, nothing is ever created, and every order ends up
    ``failed``: no order reaches OrderWise.
    """
    sandbox = stocked_sandbox(
        orderwise_options={
            "export_definitions": ExportDefinitions(
                **INSTALLATION_EXPORTS, stock_full=None, orders_by_references=None
            )
        }
    )
    add_orders(sandbox, [4101, 4102])
    settings = ConnectorSettings(
        scayle={"base_url": sandbox.scayle.base_url, "token": sandbox.scayle.token},
        orderwise={
            "api_root": sandbox.orderwise.api_root,
            "username": sandbox.orderwise.username,
            "password": sandbox.orderwise.password,
            "session_id": sandbox.orderwise.session_id,
            "export_definitions": INSTALLATION_EXPORTS,
        },
        store={"url": "memory://"},
        flows={"backoff_base_seconds": 0},
    )
    built = Connector.from_settings(settings)
    # The same connector, talking to the fake installation instead of the network.
    connector = Connector(
        scayle=sandbox.scayle_client(),
        orderwise=sandbox.orderwise_client(export_definitions=built.orderwise.export_definitions),
        store=built.store,
        mapper=built.mapper,
        settings=settings,
        worker_id="w1",
    )
    result = connector.sync_orders()
    assert result.pushed == 2, str(result)
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-4101": 1, "SCAYLE-4102": 1}


# ------------------------------------------------------------------ 2. references with odd characters


def _lookup_like_sql_server(sandbox: Sandbox) -> None:
    """Serve ``orders_by_references`` as SQL Server would: ``=`` ignores trailing spaces."""
    ow = sandbox.orderwise

    def rows(params: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for ref in dict.fromkeys(part.strip() for part in str(params["refs"]).split(",")):
            for stored in (ref, ref + " "):
                for oid in ow.order_ids(stored):
                    body = ow.order(oid)
                    found.append(
                        {
                            "owOrderId": oid,
                            "owOrderNumber": body["orderNumber"],
                            "externalRef": body["eCommerceOrderNumber"],
                            "statusText": body["orderStatus"],
                            "orderDate": body["orderDate"],
                            "lastAmended": body["lastAmendedDateTime"],
                        }
                    )
        return found

    ow.register_export(ow.export_definitions.orders_by_references, rows, ["refs"])  # type: ignore[arg-type]


def test_a_reference_format_with_a_trailing_space_never_duplicates_an_order() -> None:
    """``mapping.reference_format = "SCAYLE-{order_id} "`` is accepted by the settings.

    The create times out after OrderWise committed it; after the grace the batch lookup answers
    the order (OrderWise ignores trailing spaces), but the client keys its answer by the stripped
    reference while the flow asks for ``"SCAYLE-4201 "``: the flow sees nothing and posts a second
    sales order.
    """
    sandbox = _frozen_sandbox()
    _lookup_like_sql_server(sandbox)
    add_orders(sandbox, [4201])
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=60)
    mapper = OrderMapper(MappingConfig(reference_format="SCAYLE-{order_id} "))
    connector = Connector.for_sandbox(sandbox, mapping=mapper, flows=flows, worker_id="w1")
    sandbox.orderwise.injector.faults = Faults(
        timeout_after_commit_rate=1.0, paths=("sales/order",)
    )
    assert connector.sync_orders().ambiguous == 1
    sandbox.orderwise.injector.faults = Faults()
    sandbox.clock.advance(120)  # type: ignore[attr-defined]
    result = connector.sync_orders()
    assert result.adopted == 1, str(result)
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-4201 ": 1}


# ------------------------------------------------------------------ 3. the grace invariant


def _webhook(connector: Connector, order_id: int) -> None:
    envelope = {"key": f"k{order_id}", "type": "order-confirmed", "payload": {"id": order_id}}
    assert connector.ingest_webhook(json.dumps(envelope)).outcome == "recorded"


def test_the_grace_runs_from_when_the_create_left_not_from_when_processing_began() -> None:
    """Grace 330 s, OrderWise's session every 300 s: within the documented rule.

    The worker stamps ``attempted_at`` with the time it *began* processing the order, then reads
    the order from SCAYLE (40 s here: rate-limit waits and retries) and only then posts it. OrderWise
    queues the order at T+40 right after a session run, so it is imported at T+340. The worker
    dies after the commit; on restart the lookup at T+330 is 330 s after the recorded attempt but
    only 290 s after the real one: negative, and the order is posted a second time.
    """
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox(clock=clock)
    sandbox.orderwise.queue_orders = True
    sandbox.orderwise.session_interval = timedelta(seconds=300)
    sandbox.orderwise_client().find_orders_by_reference("warm-up")  # the session's clock starts
    clock.advance(260)
    add_orders(sandbox, [4301])
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=330)
    store = MemoryStore(clock=clock.utcnow)

    def worker() -> Connector:
        return Connector.for_sandbox(sandbox, store=store, flows=flows, worker_id="w1")

    first = worker()
    _webhook(first, 4301)
    real_get_order = first.scayle.get_order

    def slow_get_order(order_id: int, **kwargs: Any) -> Any:
        clock.advance(40)  # SCAYLE's ordersRead budget is spent: the read waits
        return real_get_order(order_id, **kwargs)

    first.scayle.get_order = slow_get_order  # type: ignore[method-assign]
    sandbox.orderwise.injector.faults = Faults(crash_after_commit_rate=1.0, paths=("sales/order",))
    with pytest.raises(SimulatedCrash):
        first.sync_orders(poll=False)
    sandbox.orderwise.injector.faults = Faults()

    clock.advance(290)  # 330 s after processing began, 290 s after the order reached OrderWise
    result = worker().sync_orders(poll=False)
    sandbox.orderwise.process_session()
    assert result.awaiting_visibility == 1, str(result)
    assert len(sandbox.orderwise.order_ids("SCAYLE-4301")) == 1


# ------------------------------------------------------------------ 4. reference write-backs


def test_a_failed_reference_write_is_retried_even_if_the_ledger_fails_right_after_the_ack() -> None:
    """SCAYLE refuses the ``PUT reference-key`` (5xx), so the write-back must wait in the ledger.

    ``_acknowledge`` commits ``acknowledged`` first and creates the ``reference:<id>`` record in a
    second write. When that second write fails (the ledger is locked, the process dies), nothing
    in the ledger remembers the write-back: later passes never write the reference to SCAYLE.
    """
    from scayle_orderwise.errors import StoreError

    sandbox = stocked_sandbox()
    add_orders(sandbox, [4401])
    store = MemoryStore(clock=sandbox.clock.utcnow)
    connector = Connector.for_sandbox(
        sandbox, store=store, flows=FlowSettings(backoff_base_seconds=0), worker_id="w1"
    )
    sandbox.scayle.injector.faults = Faults(error_rate=1.0, paths=("reference-key",))
    real_ensure = store.ensure

    def ensure_fails_for_write_backs(key: str, **kwargs: Any) -> Any:
        if key.startswith("reference:"):
            raise StoreError("database is locked")
        return real_ensure(key, **kwargs)

    store.ensure = ensure_fails_for_write_backs  # type: ignore[method-assign]
    first = connector.sync_orders()
    assert first.failed == 1, str(first)
    store.ensure = real_ensure  # type: ignore[method-assign]
    sandbox.scayle.injector.faults = Faults()
    for _ in range(3):
        sandbox.clock.advance(60)  # type: ignore[attr-defined]
        connector.sync_orders()
    assert _reference_keys(sandbox)[4401] == "SCAYLE-4401"


# ------------------------------------------------------------------ 5. leases and long passes


def test_a_long_push_never_claims_with_a_lease_that_has_already_run_out() -> None:
    """A backlog of 40 webhook orders; SCAYLE reads take 10 s each (a busy ordersRead budget).

    ``push_due`` claims every batch with ``now=as_of``, the start of the pass, so after 300 s
    (the lease) each new batch is claimed with a lease that expired before the claim. A second
    worker starting a pass then takes over orders the first one claimed seconds ago: the first
    worker loses them (``claim_lost``) and the second counts them ``never_sent``.
    """
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox(clock=clock)
    store = MemoryStore(clock=clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0, lease_seconds=300, batch_size=10)
    w1 = Connector.for_sandbox(sandbox, store=store, flows=flows, worker_id="w1")
    w2 = Connector.for_sandbox(sandbox, store=store, flows=flows, worker_id="w2")
    ids = add_orders(sandbox, range(4501, 4541))
    for order_id in ids:
        _webhook(w1, order_id)
    real_get_order = w1.scayle.get_order
    reads = {"n": 0}
    second: list[Any] = []

    def slow_get_order(order_id: int, **kwargs: Any) -> Any:
        reads["n"] += 1
        clock.advance(10)
        if reads["n"] == 35:  # w1 claimed its 4th batch about 50 s ago
            second.append(w2.sync_orders(poll=False))
        return real_get_order(order_id, **kwargs)

    w1.scayle.get_order = slow_get_order  # type: ignore[method-assign]
    result = w1.sync_orders(poll=False)
    taken_over = [
        r.key
        for r in store.records(kind="order")
        if any("lease of w1 expired" in (t.reason or "") for t in r.history)
    ]
    assert orderwise_orders_per_reference(sandbox).most_common(1)[0][1] == 1
    assert taken_over == [] and result.claim_lost == 0, (str(result), str(second[0]))


def test_one_failed_lookup_does_not_stop_the_rest_of_the_poll_from_pushing() -> None:
    """The poll reads two pages of 10 new orders; the lookup for the first page fails once (a 503).

    The first page's records go back to ``pending`` and are due again while the second page is
    pushed; ``push_due`` claims them first (most overdue), sees they were taken this pass, gives
    them back and returns: the second page's ten orders, with OrderWise answering fine, are left
    for the next pass.
    """
    from scayle_orderwise.errors import TransientError

    sandbox = stocked_sandbox()
    add_orders(sandbox, range(4601, 4621))
    sandbox.scayle.webhooks.clear()
    flows = FlowSettings(backoff_base_seconds=0, order_poll_page_size=10, batch_size=10)
    connector = Connector.for_sandbox(sandbox, flows=flows, worker_id="w1")
    real_lookup = connector.orderwise.find_orders_by_references
    lookups = {"n": 0}

    def lookup_fails_once(references: Any) -> Any:
        lookups["n"] += 1
        if lookups["n"] == 1:
            raise TransientError("OrderWise answered 503")
        return real_lookup(references)

    connector.orderwise.find_orders_by_references = lookup_fails_once  # type: ignore[method-assign]
    result = connector.sync_orders()
    assert result.deferred == 10 and result.pushed == 10, str(result)


# ------------------------------------------------------------------ 6. two workers, one pass each


def test_a_cancellation_seen_by_the_poll_while_another_worker_holds_the_order_does_not_stop_the_pass() -> (
    None
):
    """Order 4701 waits in the ledger (``pending``, from a webhook); the customer cancels it.

    Worker w1's poll reads the record as ``pending`` and marks it ``cancelled``; in between,
    worker w2 claimed it (it is pushing due orders). ``mark`` refuses an ``in_flight`` record
    with ``ClaimHeldError``; ``intake`` does not expect it and ``poll`` does not catch it, so
    w1's whole pass raises and the other new order on the page (4702) is not pushed by it.
    """
    sandbox = stocked_sandbox()
    store = MemoryStore(clock=sandbox.clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0)
    w1 = Connector.for_sandbox(sandbox, store=store, flows=flows, worker_id="w1")
    w2 = Connector.for_sandbox(sandbox, store=store, flows=flows, worker_id="w2")
    add_orders(sandbox, [4701, 4702])
    _webhook(w1, 4701)
    sandbox.scayle.cancel_order(4701)
    real_get = store.get

    def get_then_w2_claims(key: str) -> Any:
        record = real_get(key)
        if key == "order:4701" and record is not None and record.state == State.PENDING:
            assert store.claim(key, owner="w2", lease=timedelta(seconds=300)) is not None
        return record

    store.get = get_then_w2_claims  # type: ignore[method-assign]
    result = w1.sync_orders()
    store.get = real_get  # type: ignore[method-assign]
    assert result.pushed == 1, str(result)
    w2.sync_orders(poll=False)
    record = store.get("order:4701")
    assert record is not None and record.state == State.CANCELLED
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-4702": 1}


# ------------------------------------------------------------------ 7. a rolling upgrade from 0.1.0

V010 = "df4d454e6e094a23127e642a3428ab5d42d2e36a"
"""The commit released as 0.1.0 (``Changelog: 0.1.0 gets its own section``)."""

# A 0.1.0 worker on the shared ledger, with its own sandbox in which OrderWise already holds the
# order the new version sent (visible, or still queued in the e-commerce session).
_OLD_WORKER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import scayle_orderwise
from flow_helpers import add_orders, stocked_sandbox
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.mapping import MappingConfig, OrderMapper
from scayle_orderwise.store import SqliteStore
ledger, order_id, queued = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "queued"
sandbox = stocked_sandbox()
add_orders(sandbox, [order_id])
sandbox.orderwise.queue_orders = queued
order = sandbox.scayle_client().get_order(order_id)
sandbox.orderwise_client().create_sales_order(OrderMapper(MappingConfig()).map(order).to_orderwise())
old = Connector.for_sandbox(sandbox, store=SqliteStore(ledger), worker_id="v0.1.0",
                            flows=FlowSettings(backoff_base_seconds=0))
result = old.sync_orders()
print(json.dumps({"module": scayle_orderwise.__file__, "result": str(result),
                  "orders": len(sandbox.orderwise.order_ids(f"SCAYLE-{order_id}"))}))
"""


@pytest.fixture(scope="module")
def v010_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 0.1.0 sources, from this checkout's git history (skips without it)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        tar = subprocess.run(
            ["git", "-C", str(repo), "archive", V010, "src"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the 0.1.0 commit is not in this checkout's git history")
    out = tmp_path_factory.mktemp("v010")
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(out, filter="data")
    return out / "src"


def _run_old_worker(v010: Path, ledger: Path, order_id: int, mode: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(v010)}
    tests = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", _OLD_WORKER, tests, str(ledger), str(order_id), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(parsed["module"]).is_relative_to(v010), parsed  # 0.1.0 ran, not this checkout
    return parsed


def test_a_0_1_0_worker_taking_over_a_new_workers_unclear_send_waits_out_the_grace(
    v010_src: Path, tmp_path: Path
) -> None:
    """The new version's create of order 4802 times out after OrderWise queued it (``sent``, with
    ``attempted_at``). A 0.1.0 worker still running claims it: its lookup finds nothing yet (the
    e-commerce session has not run), it looks for ``sent_at`` in the payload or the
    ``orders:sent_at:<id>`` cursor, finds neither (the new version writes neither), concludes the
    order was never sent and posts it again.
    """
    ledger = tmp_path / "ledger.db"
    sandbox = stocked_sandbox()
    add_orders(sandbox, [4802])
    sandbox.scayle.webhooks.clear()
    store = SqliteStore(ledger, clock=sandbox.clock.utcnow)
    new = Connector.for_sandbox(
        sandbox, store=store, worker_id="v0.2", flows=FlowSettings(backoff_base_seconds=0)
    )
    sandbox.orderwise.injector.faults = Faults(
        timeout_after_commit_rate=1.0, paths=("sales/order",)
    )
    assert new.sync_orders().ambiguous == 1
    store.close()
    old = _run_old_worker(v010_src, ledger, 4802, "queued")
    assert old["orders"] == 1, old["result"]


# ------------------------------------------------------------------ 8. costs


def test_a_pass_woken_by_webhooks_never_walks_the_order_list() -> None:
    """The service wakes the orders flow for webhooks: such a pass pushes what they recorded and
    leaves the walk of SCAYLE's whole order list (the safety-net poll) to the flow's interval.
    One order on its own costs its read, one lookup, the create and the write-back."""
    from scayle_orderwise.service.scheduler import FlowScheduler

    sandbox = stocked_sandbox()
    add_orders(sandbox, range(1, 201))
    connector = Connector.for_sandbox(sandbox, flows=FlowSettings(backoff_base_seconds=0))
    assert connector.sync_orders().pushed == 200
    for _ in range(3):  # the reference write-backs catch up once SCAYLE's ordersWrite budget frees
        sandbox.clock.advance(120)  # type: ignore[attr-defined]
        connector.sync_orders(poll=False)
    assert connector.health().reference_writes_waiting == 0
    scheduler = FlowScheduler(connector)

    def calls() -> int:
        return len(sandbox.scayle.requests) + len(sandbox.orderwise.requests)

    before = calls()
    for order_id in range(201, 221):
        add_orders(sandbox, [order_id])
        _webhook(connector, order_id)
        sandbox.clock.advance(5)  # type: ignore[attr-defined]
        scheduler.run_pass("orders", woken=True)  # what the webhook endpoint's wake starts
    assert orderwise_orders_per_reference(sandbox).total() == 220
    assert all(ref is not None for ref in _reference_keys(sandbox).values())
    assert not any(path.endswith("/orders") for _m, path, _s in sandbox.scayle.requests[-80:])
    assert (calls() - before) / 20 == 4.0


def test_a_burst_of_webhooks_sharing_one_woken_pass_stays_within_the_call_budget() -> None:
    """Issue 11 §1: webhook-driven, at most 3.2 API calls per order (a burst shares one pass
    after the flow's ``wake_delay_seconds``, and one lookup per claimed batch)."""
    from scayle_orderwise.service.scheduler import FlowScheduler

    sandbox = stocked_sandbox()
    add_orders(sandbox, range(1, 101))
    connector = Connector.for_sandbox(sandbox, flows=FlowSettings(backoff_base_seconds=0))
    assert connector.sync_orders().pushed == 100
    sandbox.clock.advance(120)  # type: ignore[attr-defined]
    connector.sync_orders(poll=False)
    scheduler = FlowScheduler(connector)
    before = len(sandbox.scayle.requests) + len(sandbox.orderwise.requests)
    for order_id in range(101, 151):
        add_orders(sandbox, [order_id])
        _webhook(connector, order_id)
    scheduler.run_pass("orders", woken=True)
    after = len(sandbox.scayle.requests) + len(sandbox.orderwise.requests)
    assert orderwise_orders_per_reference(sandbox).total() == 150
    assert (after - before) / 50 <= 3.2
