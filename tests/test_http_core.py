"""The shared HTTP core: retries, ambiguity of creates, error mapping, rate budget, redaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from scayle_orderwise._http import (
    AsyncHttp,
    HttpCore,
    RateBudget,
    Redactor,
    RequestSpec,
    RetryPolicy,
    ServerBusyError,
    SyncHttp,
    parse_retry_after,
)
from scayle_orderwise.errors import (
    AmbiguousOutcomeError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TransientError,
)
from scayle_orderwise.redaction import SecretStr, as_secret

TOKEN = "tok-5ecret-XYZ"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def scayle_error(
    status: int, key: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"errors": [{"errorKey": key, "message": message, "context": {}}]}
    return httpx.Response(status, json=body, headers=headers)


def make(
    responder: Callable[[httpx.Request], httpx.Response],
    *,
    clock: FakeClock | None = None,
    max_retries: int = 3,
    budget: RateBudget | None = None,
) -> tuple[SyncHttp, list[httpx.Request], FakeClock]:
    clock = clock or FakeClock()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responder(request)

    core = HttpCore(
        "https://api.example/api/admin/v1",
        auth_headers=lambda: {"X-Access-Token": TOKEN},
        retry=RetryPolicy(max_retries=max_retries, sleep=clock.sleep, random=lambda: 0.5),
        budget=budget if budget is not None else RateBudget(clock=clock),
        redactor=Redactor([TOKEN]),
        service="TEST",
    )
    return SyncHttp(core, transport=httpx.MockTransport(handler)), seen, clock


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    items = list(responses)

    def responder(request: httpx.Request) -> httpx.Response:
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return responder


# -- secrets -------------------------------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    s = SecretStr(TOKEN)
    assert TOKEN not in repr(s)
    assert TOKEN not in str(s)
    assert TOKEN not in f"{s}"
    assert TOKEN not in f"{s!r}"
    assert s.get_secret_value() == TOKEN
    assert as_secret(s) is s and as_secret(TOKEN) == s


def test_the_old_secret_type_is_a_deprecated_secretstr() -> None:
    with pytest.warns(DeprecationWarning, match="SecretStr"):
        from scayle_orderwise._http import Secret
    old = Secret(TOKEN)
    assert isinstance(old, SecretStr) and old.get() == TOKEN and TOKEN not in repr(old)
    assert Secret(SecretStr(TOKEN)).get() == TOKEN
    assert Redactor([old])(f"x {TOKEN}") == "x ***"


def test_clients_hold_their_credentials_as_secretstr() -> None:
    from scayle_orderwise.orderwise.client import OrderwiseClient
    from scayle_orderwise.scayle.client import ScayleClient

    with ScayleClient("https://x.invalid/api", SecretStr(TOKEN), shop_key="ac") as scayle:
        assert isinstance(scayle._token, SecretStr) and scayle._token.get_secret_value() == TOKEN
        assert TOKEN not in repr(scayle) and TOKEN not in repr(vars(scayle))
    with OrderwiseClient("https://x.invalid/OWAPI", "api", TOKEN, session_id=1) as orderwise:
        assert isinstance(orderwise._core._password, SecretStr)
        assert TOKEN not in repr(orderwise) and TOKEN not in repr(vars(orderwise._core))


def test_redactor_masks_text_data_and_headers() -> None:
    r = Redactor([TOKEN, None, "ab"])  # too-short secrets are ignored, None is skipped
    assert r(f"token {TOKEN} leaked") == "token *** leaked"
    assert r("ab stays") == "ab stays"
    assert r.data({"a": [TOKEN, 1], "b": {"c": f"x{TOKEN}"}}) == {
        "a": ["***", 1],
        "b": {"c": "x***"},
    }
    masked = r.headers({"X-Access-Token": TOKEN, "Authorization": "Bearer abc", "Accept": "json"})
    assert masked == {"X-Access-Token": "***", "Authorization": "***", "Accept": "json"}
    assert TOKEN not in repr(r)


# -- request building ------------------------------------------------------------------------------


def test_request_carries_auth_headers_and_keeps_encoded_path() -> None:
    http, seen, _ = make(sequence(httpx.Response(200, json={"ok": True})))
    spec = RequestSpec("GET", "/variants/key%3DSKU%201/stocks", params={"limit": 5, "cursor": None})
    assert http.send_json(spec) == {"ok": True}
    req = seen[0]
    assert req.headers["x-access-token"] == TOKEN
    assert req.url.raw_path == b"/api/admin/v1/variants/key%3DSKU%201/stocks?limit=5"
    assert "cursor" not in req.url.params


def test_auth_headers_are_read_on_every_attempt() -> None:
    tokens = iter(["one", "two"])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-token"])
        return httpx.Response(503) if len(seen) == 1 else httpx.Response(204)

    core = HttpCore(
        "https://api.example",
        auth_headers=lambda: {"X-Token": next(tokens)},
        retry=RetryPolicy(sleep=lambda s: None),
    )
    assert (
        SyncHttp(core, transport=httpx.MockTransport(handler)).send_json(RequestSpec("GET", "/x"))
        is None
    )
    assert seen == ["one", "two"]


def test_retry_safety_of_specs() -> None:
    assert RequestSpec("GET", "/").retry_safe
    assert not RequestSpec("POST", "/").retry_safe
    assert not RequestSpec("PUT", "/").retry_safe
    assert RequestSpec("POST", "/", idempotent=True).retry_safe
    assert not RequestSpec("GET", "/", idempotent=False).retry_safe


# -- retries ------------------------------------------------------------------------------------


def test_safe_request_retries_5xx_with_growing_backoff() -> None:
    http, seen, clock = make(
        sequence(
            scayle_error(503, "DOWN", "down"),
            scayle_error(502, "DOWN", "down"),
            httpx.Response(200, json={"id": 1}),
        )
    )
    assert http.send_json(RequestSpec("GET", "/orders/1")) == {"id": 1}
    assert len(seen) == 3
    assert len(clock.slept) == 2
    assert clock.slept[1] > clock.slept[0] > 0


def test_safe_request_gives_up_after_max_retries() -> None:
    http, seen, clock = make(sequence(scayle_error(500, "BOOM", "boom")), max_retries=2)
    with pytest.raises(ServerBusyError) as info:
        http.send(RequestSpec("GET", "/orders/1"))
    assert isinstance(info.value, TransientError)
    assert info.value.status_code == 500
    assert info.value.error_key == "BOOM"
    assert len(seen) == 3
    assert len(clock.slept) == 2


def test_retry_after_header_is_honoured_on_5xx() -> None:
    http, _, clock = make(
        sequence(httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(200, json={}))
    )
    http.send(RequestSpec("GET", "/x"))
    assert 7.0 <= clock.slept[0] <= 7.7


def test_create_is_not_repeated_after_a_5xx() -> None:
    http, seen, clock = make(sequence(scayle_error(500, "BOOM", "boom"), httpx.Response(201)))
    with pytest.raises(AmbiguousOutcomeError) as info:
        http.send(RequestSpec("POST", "/fulfillment/shipments", json={"a": 1}))
    assert len(seen) == 1
    assert clock.slept == []
    assert info.value.status_code == 500
    assert "look it up" in str(info.value)


def test_create_is_not_repeated_after_a_read_timeout() -> None:
    http, seen, _ = make(sequence(httpx.ReadTimeout("lost"), httpx.Response(201)))
    with pytest.raises(AmbiguousOutcomeError):
        http.send(RequestSpec("POST", "/fulfillment/shipments", json={}))
    assert len(seen) == 1


@pytest.mark.parametrize("exc", [httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")])
def test_create_is_retried_when_it_provably_was_not_sent(exc: Exception) -> None:
    http, seen, _ = make(sequence(exc, httpx.Response(201)))
    http.send(RequestSpec("POST", "/fulfillment/shipments", json={}))
    assert len(seen) == 2


def test_unsent_create_raises_transient_when_retries_are_off() -> None:
    http, seen, _ = make(sequence(httpx.ConnectTimeout("slow")), max_retries=0)
    with pytest.raises(TransientError) as info:
        http.send(RequestSpec("POST", "/x", json={}))
    assert not isinstance(info.value, AmbiguousOutcomeError)
    assert len(seen) == 1


def test_idempotent_write_is_retried_after_timeout() -> None:
    http, seen, _ = make(
        sequence(httpx.ReadTimeout("lost"), httpx.Response(200, json={"quantity": 1}))
    )
    assert http.send_json(RequestSpec("POST", "/variants/1/stocks", json={}, idempotent=True)) == {
        "quantity": 1
    }
    assert len(seen) == 2


def test_429_waits_for_the_reset_and_retries() -> None:
    limited = scayle_error(
        429,
        "RATE_LIMIT_EXCEED",
        "The request rate limit exceeded.",
        {
            "X-RateLimit-Scope": "ordersRead",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "12",
        },
    )
    http, seen, clock = make(sequence(limited, httpx.Response(200, json={})))
    http.send(RequestSpec("GET", "/orders", scope="ordersRead"))
    assert len(seen) == 2
    assert 12.0 <= sum(clock.slept) <= 13.3


def test_429_error_carries_reset_and_scope() -> None:
    limited = scayle_error(
        429,
        "RATE_LIMIT_EXCEED",
        "slow down",
        {
            "X-RateLimit-Scope": "stocksWrite",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "30",
        },
    )
    http, _, _ = make(sequence(limited), max_retries=0)
    before = datetime.now(UTC)
    with pytest.raises(RateLimitedError) as info:
        http.send(RequestSpec("POST", "/variants/1/stocks", json={}, idempotent=True))
    err = info.value
    assert err.error_key == "RATE_LIMIT_EXCEED"
    assert err.scope == "stocksWrite"
    assert err.retry_after == 30
    assert err.reset_at is not None
    assert (
        before + timedelta(seconds=29) <= err.reset_at <= datetime.now(UTC) + timedelta(seconds=31)
    )


def test_parse_retry_after_variants() -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    )
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=4.0, jitter=0.25, random=lambda: 0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    low = RetryPolicy(backoff_initial=0.5, jitter=0.25, random=lambda: 1.0)
    assert low.backoff(1) == pytest.approx(0.375)


# -- error mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, BadRequestError),
        (422, BadRequestError),
    ],
)
def test_status_codes_map_to_the_error_tree(status: int, cls: type[ApiError]) -> None:
    http, seen, _ = make(sequence(scayle_error(status, "SOME_KEY", "Human text")))
    with pytest.raises(cls) as info:
        http.send(RequestSpec("GET", "/orders/9"))
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert info.value.error_key == "SOME_KEY"
    assert info.value.message == "Human text"
    assert info.value.path == "/api/admin/v1/orders/9"
    assert len(seen) == 1  # 4xx are not retried


def test_several_errors_keep_all_messages_and_first_key() -> None:
    body = {
        "errors": [{"errorKey": "A", "message": "first"}, {"errorKey": "B", "message": "second"}]
    }
    http, _, _ = make(sequence(httpx.Response(400, json=body)))
    with pytest.raises(BadRequestError) as info:
        http.send(RequestSpec("GET", "/x"))
    assert info.value.error_key == "A"
    assert info.value.message == "first; second"


def test_plain_text_and_empty_error_bodies() -> None:
    http, _, _ = make(sequence(httpx.Response(400, text="the ean already exists")))
    with pytest.raises(BadRequestError, match="the ean already exists"):
        http.send(RequestSpec("GET", "/x"))
    http, _, _ = make(sequence(httpx.Response(401, text="")))
    with pytest.raises(AuthenticationError, match="HTTP 401"):
        http.send(RequestSpec("GET", "/x"))


def test_a_token_echoed_by_the_server_is_redacted() -> None:
    http, _, _ = make(sequence(scayle_error(401, "UNAUTHORIZED", f"token {TOKEN} is invalid")))
    with pytest.raises(AuthenticationError) as info:
        http.send(RequestSpec("GET", "/x"))
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert TOKEN not in repr(info.value.body)
    assert TOKEN not in repr(http) and TOKEN not in repr(http.core)


# -- rate budget ------------------------------------------------------------------------------------


def rl_headers(scope: str, limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        "X-RateLimit-Scope": scope,
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_budget_learns_from_headers_and_paces_until_reset() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    assert budget.reserve("stocksWrite") == 0.0  # unknown scope: go
    budget.update(httpx.Headers(rl_headers("stocksWrite", 10, 2, 20)))
    assert budget.reserve("stocksWrite") == 0.0
    assert budget.reserve("stocksWrite") == 0.0
    assert budget.reserve("stocksWrite") == pytest.approx(20.0)
    clock.now += 20.0
    assert budget.reserve("stocksWrite") == 0.0  # window reset: full limit again
    state = budget.state("stocksWrite")
    assert state is not None and state.remaining == 9


def test_budget_keeps_the_lower_count_for_out_of_order_answers() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.update(httpx.Headers(rl_headers("ordersRead", 100, 40, 30)))
    budget.update(httpx.Headers(rl_headers("ordersRead", 100, 45, 30)))  # older answer, same window
    state = budget.state("ordersRead")
    assert state is not None and state.remaining == 40


def test_budget_aliases_hint_to_the_servers_scope() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.update(httpx.Headers(rl_headers("stocksWrite", 5, 0, 9)), scope_hint="myGuess")
    assert budget.reserve("myGuess") == pytest.approx(9.0)


def test_budget_static_limits_pace_without_headers() -> None:
    clock = FakeClock()
    budget = RateBudget(limits={"orderwise": (2, 1.0)}, clock=clock)
    assert budget.reserve("orderwise") == 0.0
    assert budget.reserve("orderwise") == 0.0
    assert budget.reserve("orderwise") == pytest.approx(1.0)
    clock.now += 1.0
    assert budget.reserve("orderwise") == 0.0


def test_budget_is_thread_safe() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.update(httpx.Headers(rl_headers("s", 1000, 500, 60)))
    granted = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            if budget.reserve("s") == 0.0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 500


def test_sender_sleeps_before_a_call_when_the_budget_is_spent() -> None:
    headers = rl_headers("ordersRead", 3, 0, 15)
    http, seen, clock = make(sequence(httpx.Response(200, json={}, headers=headers)))
    http.send(RequestSpec("GET", "/a", scope="ordersRead"))
    assert clock.slept == []
    http.send(RequestSpec("GET", "/b", scope="ordersRead"))
    assert clock.slept == [pytest.approx(15.0)]
    assert len(seen) == 2


def test_429_exhausts_the_scope_for_other_callers() -> None:
    limited = scayle_error(
        429, "RATE_LIMIT_EXCEED", "x", rl_headers("fulfillmentWrite", 300, 0, 40)
    )
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    http, _, _ = make(sequence(limited), clock=clock, budget=budget, max_retries=0)
    with pytest.raises(RateLimitedError):
        http.send(RequestSpec("POST", "/fulfillment/shipments", json={}, scope="fulfillmentWrite"))
    assert budget.reserve("fulfillmentWrite") == pytest.approx(40.0)


def test_429_saying_reset_0_still_closes_the_scope_for_a_moment() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.exhaust("stocksWrite", 0.0)  # X-RateLimit-Reset counts whole seconds: "0" is < 1 s
    assert budget.reserve("stocksWrite") == pytest.approx(1.0)


def test_calls_in_flight_at_a_window_reset_are_held_back_from_the_new_window() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.update(httpx.Headers(rl_headers("stocksWrite", 3, 3, 1)))
    granted = [budget.reserve_tracked("stocksWrite") for _ in range(3)]
    assert granted == [(0.0, True)] * 3
    budget.release("stocksWrite")  # one answer is in; two calls are still on their way
    clock.now += 1.0
    # The two unanswered calls may be counted by the server in the new window: 3 - 2 = 1 left.
    assert budget.reserve("stocksWrite") == 0.0
    assert budget.reserve("stocksWrite") > 0
    budget.release("stocksWrite")
    budget.release("stocksWrite")
    clock.now += 1.0
    assert [budget.reserve("stocksWrite") for _ in range(3)] == [0.0, 0.0, 0.0]


def test_first_answer_after_a_local_reset_does_not_raise_the_count() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.update(httpx.Headers(rl_headers("stocksWrite", 10, 0, 1)))
    clock.now += 1.0
    for _ in range(4):  # four calls leave in the new window before any answer comes back
        assert budget.reserve("stocksWrite") == 0.0
    budget.update(httpx.Headers(rl_headers("stocksWrite", 10, 9, 1)))  # the server saw one
    state = budget.state("stocksWrite")
    assert state is not None and state.remaining == 6


def test_sender_releases_its_tracked_unit_on_success_and_on_failure() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.update(httpx.Headers(rl_headers("ordersRead", 5, 5, 10)))
    ok = httpx.Response(200, json={}, headers=rl_headers("ordersRead", 5, 4, 10))
    http, _, _ = make(sequence(ok), clock=clock, budget=budget)
    http.send(RequestSpec("GET", "/a", scope="ordersRead"))
    state = budget.state("ordersRead")
    assert state is not None and state.in_flight == 0
    down = scayle_error(400, "BAD", "bad", rl_headers("ordersRead", 5, 3, 10))
    http, _, _ = make(sequence(down), clock=clock, budget=budget, max_retries=0)
    with pytest.raises(BadRequestError):
        http.send(RequestSpec("GET", "/b", scope="ordersRead"))
    state = budget.state("ordersRead")
    assert state is not None and state.in_flight == 0


# -- async twin -------------------------------------------------------------------------------------


async def test_async_sender_retries_and_maps_like_the_sync_one() -> None:
    clock = FakeClock()
    responses = [scayle_error(503, "DOWN", "down"), httpx.Response(200, json={"id": 5})]
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return responses.pop(0) if len(responses) > 1 else responses[0]

    core = HttpCore(
        "https://api.example",
        retry=RetryPolicy(sleep=clock.sleep, async_sleep=clock.async_sleep, random=lambda: 0.0),
        budget=RateBudget(clock=clock),
    )
    http = AsyncHttp(core, transport=httpx.MockTransport(handler))
    assert await http.send_json(RequestSpec("GET", "/orders/5")) == {"id": 5}
    assert calls == ["GET", "GET"]
    assert clock.slept == [0.5]

    responses[:] = [scayle_error(500, "BOOM", "boom")]
    with pytest.raises(AmbiguousOutcomeError):
        await http.send(RequestSpec("POST", "/fulfillment/cancellations", json={}))
    assert calls[-1] == "POST" and len(calls) == 3
    await http.aclose()
