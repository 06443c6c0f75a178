"""ExternalResolver against a real customer vault on loopback: auth, retries, breaker, leaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import pytest

from coatcheck.middleware.external import (
    AuthFailed,
    BadResponse,
    BreakerState,
    CircuitOpen,
    EndpointConfig,
    EndpointTimeout,
    EndpointUnavailable,
    ExternalError,
    ExternalResolver,
    FetchedValue,
    ReferenceNotFound,
    UnknownEntityType,
    UnusableReference,
)
from tests.external.customer_vault import (
    API_KEY,
    BEARER,
    BIG_TOKEN_BYTES,
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    USER,
    VALUES,
    VaultState,
    build_app,
)
from tests.external.loopback import FakeClock, RecordingSleep, closed_port, serve

T = TypeVar("T")
Scenario = Callable[[ExternalResolver, VaultState], Awaitable[T]]


def assert_chain_is_clean(error: BaseException) -> None:
    """No exception reachable from `error` (cause or context) holds a fetched value."""
    seen: BaseException | None = error
    while seen is not None:
        assert VALUES["r1"] not in f"{seen!r} {vars(seen)!r}"
        seen = seen.__cause__ or seen.__context__


def endpoint(base: str, path: str, **extra: Any) -> EndpointConfig:
    """An endpoint config for `base + path` with quick retries unless overridden."""
    data: dict[str, Any] = {
        "name": "cust",
        "url_template": base + path,
        "timeout_seconds": 0.3,
        "retry": {"attempts": 3, "backoff_base_seconds": 0.1, "backoff_max_seconds": 0.15},
    }
    data.update(extra)
    return EndpointConfig.model_validate(data)


def run(
    configs: Callable[[str], dict[str, EndpointConfig]],
    scenario: Callable[[ExternalResolver, VaultState], Awaitable[T]],
    clock: FakeClock | None = None,
    sleep: RecordingSleep | None = None,
    state: VaultState | None = None,
) -> T:
    """Start the customer vault, build a resolver on it and run `scenario`."""
    vault_state = state or VaultState()

    async def main() -> T:
        async with serve(build_app(vault_state)) as base, aiohttp.ClientSession() as session:
            resolver = ExternalResolver(
                configs(base), session, clock=clock or FakeClock(), sleep=sleep or RecordingSleep()
            )
            return await scenario(resolver, vault_state)

    return asyncio.run(main())


async def resolve_r1(resolver: ExternalResolver, _: VaultState) -> str:
    return (await resolver.resolve("EMAIL_ADDRESS", "r1")).reveal()


OAUTH = {
    "type": "oauth2_client_credentials",
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "refresh_margin_seconds": 10,
}
AUTH_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("none", "/none/{ref}", {"type": "none"}),
    ("basic", "/basic/{ref}", {"type": "basic", "username": USER, "password": PASSWORD}),
    ("bearer", "/bearer/{ref}", {"type": "bearer", "token": BEARER}),
    (
        "key_header",
        "/key-header/{ref}",
        {"type": "api_key", "name": "X-Api-Key", "value": API_KEY},
    ),
    (
        "key_query",
        "/key-query/{ref}",
        {"type": "api_key", "name": "api_key", "value": API_KEY, "location": "query"},
    ),
    ("oauth", "/oauth/{ref}", OAUTH),
]


def _with_token_url(auth: dict[str, Any], base: str) -> dict[str, Any]:
    return {**auth, "token_url": f"{base}/token"} if auth["type"].startswith("oauth") else auth


@pytest.mark.parametrize(("name", "path", "auth"), AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
def test_each_auth_type_fetches_the_value(name: str, path: str, auth: dict[str, Any]) -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(base, path, auth=_with_token_url(auth, base))}

    state = VaultState()
    assert run(configs, resolve_r1, state=state) == VALUES["r1"]
    assert state.hits[name] == 1


WRONG_AUTH: list[tuple[str, dict[str, Any]]] = [
    ("/none/{ref}".replace("none", "basic"), {"type": "none"}),
    ("/basic/{ref}", {"type": "basic", "username": USER, "password": "wrong"}),
    ("/bearer/{ref}", {"type": "bearer", "token": "wrong"}),
    ("/key-header/{ref}", {"type": "api_key", "name": "X-Api-Key", "value": "wrong"}),
    ("/key-query/{ref}", {"type": "api_key", "name": "api_key", "value": "x", "location": "query"}),
    ("/oauth/{ref}", {**OAUTH, "client_secret": "wrong"}),
]


@pytest.mark.parametrize(("path", "auth"), WRONG_AUTH)
def test_wrong_credentials_fail_without_retry(path: str, auth: dict[str, Any]) -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(base, path, auth=_with_token_url(auth, base))}

    sleep = RecordingSleep()
    with pytest.raises(AuthFailed) as info:
        run(configs, resolve_r1, sleep=sleep)
    assert info.value.endpoint == "cust"
    assert sleep.delays == []
    for secret in (PASSWORD, BEARER, API_KEY, CLIENT_SECRET, "wrong"):
        assert secret not in str(info.value)


def test_oauth_token_is_cached_then_refreshed_before_expiry() -> None:
    clock = FakeClock()

    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(base, "/oauth/{ref}", auth=_with_token_url(OAUTH, base))}

    async def scenario(resolver: ExternalResolver, state: VaultState) -> list[list[str]]:
        seen = []
        for advance in (0, 39, 11, 49):  # expires_in 60, margin 10: refresh at +50
            clock.now += advance
            assert (await resolver.resolve("EMAIL_ADDRESS", "r1")).reveal() == VALUES["r1"]
            seen.append(list(state.tokens_issued))
        return seen

    assert run(configs, scenario, clock=clock) == [
        ["tok-0"],
        ["tok-0"],  # +39: more than the 10 s margin left
        ["tok-0", "tok-1"],  # +50: 10 s before expiry, refreshed early
        ["tok-0", "tok-1"],  # +99: tok-1 (expires at +110) still good
    ]


def test_oauth_token_endpoint_down_is_retried_then_unavailable() -> None:
    sleep = RecordingSleep()
    token_url = f"http://127.0.0.1:{closed_port()}/token"

    def configs(base: str) -> dict[str, EndpointConfig]:
        auth = {**OAUTH, "token_url": token_url}
        return {"EMAIL_ADDRESS": endpoint(base, "/oauth/{ref}", auth=auth)}

    with pytest.raises(EndpointUnavailable):
        run(configs, resolve_r1, sleep=sleep)
    assert sleep.delays == [0.1, 0.15]


def test_oauth_revoked_token_is_replaced_on_401() -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(base, "/oauth/{ref}", auth=_with_token_url(OAUTH, base))}

    async def scenario(resolver: ExternalResolver, state: VaultState) -> list[str]:
        await resolver.resolve("EMAIL_ADDRESS", "r1")
        state.revoked.add("tok-0")
        assert (await resolver.resolve("EMAIL_ADDRESS", "r1")).reveal() == VALUES["r1"]
        return state.tokens_issued

    assert run(configs, scenario) == ["tok-0", "tok-1"]


def test_post_with_body_template_and_value_path() -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        cfg = endpoint(
            base,
            "/lookup",
            method="POST",
            body_template={"query": {"id": "{ref}"}, "fields": ["value"], "opt": None},
            value_path="data.value",
        )
        return {"CREDIT_CARD": cfg}

    async def scenario(resolver: ExternalResolver, _: VaultState) -> str:
        return (await resolver.resolve("CREDIT_CARD", "r/2")).reveal()

    assert run(configs, scenario) == VALUES["r/2"]


def test_ref_is_url_quoted_into_the_path() -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"CREDIT_CARD": endpoint(base, "/none/{ref}")}

    async def scenario(resolver: ExternalResolver, state: VaultState) -> str:
        value = (await resolver.resolve("CREDIT_CARD", "r 3+x?")).reveal()
        assert state.paths == ["/none/r%203%2Bx%3F"]
        return value

    assert run(configs, scenario) == VALUES["r 3+x?"]


# Refs that would leave their path segment: dot segments survive quote(safe=""), and an
# encoded "/", "\" or "%" walks the path on a server or proxy that decodes before routing.
WALKING_REFS = ["..", ".", "", "...", "../admin", "a/b", "a\\b", "%2e%2e", "%2F"]


@pytest.mark.parametrize("ref", WALKING_REFS)
def test_ref_that_walks_the_path_is_refused_unsent(ref: str) -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        auth = {"type": "bearer", "token": BEARER}
        return {"CREDIT_CARD": endpoint(base, "/bearer/{ref}", auth=auth)}

    async def scenario(resolver: ExternalResolver, state: VaultState) -> list[str]:
        with pytest.raises(UnusableReference) as info:
            await resolver.resolve("CREDIT_CARD", ref)
        assert isinstance(info.value, ReferenceNotFound)  # the gateway's 404
        assert resolver.breaker("CREDIT_CARD").state is BreakerState.CLOSED
        return state.paths

    assert run(configs, scenario) == []  # no request at all, so no bearer token went out


@pytest.mark.parametrize("ref", ["a.b", "..x", "CUST-7Q2K9X", "r 3+x?"])
def test_refs_with_dots_inside_are_fine(ref: str) -> None:
    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"CREDIT_CARD": endpoint(base, "/none/{ref}")}

    async def scenario(resolver: ExternalResolver, state: VaultState) -> list[str]:
        with contextlib.suppress(ReferenceNotFound):
            await resolver.resolve("CREDIT_CARD", ref)
        return state.paths

    assert len(run(configs, scenario)) == 1


def test_oauth_token_answer_is_capped() -> None:
    """Issue 19, finding 7: an 80 MB token answer was read whole (113 -> 353 MB RSS)."""

    def configs(base: str) -> dict[str, EndpointConfig]:
        auth = {**_with_token_url(OAUTH, base), "token_url": f"{base}/big-token"}
        return {"EMAIL_ADDRESS": endpoint(base, "/oauth/{ref}", auth=auth, max_body_bytes=4096)}

    async def scenario(resolver: ExternalResolver, _: VaultState) -> str:
        with pytest.raises(AuthFailed) as info:
            await resolver.resolve("EMAIL_ADDRESS", "r1")
        return info.value.reason

    state = VaultState()
    assert run(configs, scenario, state=state) == "token response larger than 4096 bytes"
    # The gateway stopped reading at the cap and closed; the server could not push it all.
    assert state.big_token_sent < BIG_TOKEN_BYTES // 4
    assert not any(path.startswith("/oauth/") for path in state.paths)


FAILURES: list[tuple[str, type[ExternalError], int, list[float]]] = [
    ("/slow/{ref}", EndpointTimeout, 3, [0.1, 0.15]),
    ("/garbage/{ref}", BadResponse, 1, []),
    ("/shape/{ref}", BadResponse, 0, []),
    ("/forbidden/{ref}", AuthFailed, 1, []),
    ("/redirect/{ref}", BadResponse, 1, []),
    ("/huge/{ref}", BadResponse, 1, []),
]


@pytest.mark.parametrize(("path", "error", "hits", "delays"), FAILURES)
def test_failure_modes(
    path: str, error: type[ExternalError], hits: int, delays: list[float]
) -> None:
    state = VaultState(slow_seconds=1.0)
    sleep = RecordingSleep()
    name = path.split("/")[1]

    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(base, path)}

    with pytest.raises(error) as info:
        run(configs, resolve_r1, sleep=sleep, state=state)
    assert VALUES["r1"] not in str(info.value)
    assert_chain_is_clean(info.value)
    assert state.hits[name] == hits
    assert sleep.delays == delays


def test_unknown_ref_is_not_found_and_not_retried() -> None:
    sleep = RecordingSleep()

    async def scenario(resolver: ExternalResolver, _: VaultState) -> None:
        await resolver.resolve("EMAIL_ADDRESS", "nope")

    with pytest.raises(ReferenceNotFound):
        run(lambda base: {"EMAIL_ADDRESS": endpoint(base, "/none/{ref}")}, scenario, sleep=sleep)
    assert sleep.delays == []


def test_closed_port_is_unavailable_after_retries() -> None:
    sleep = RecordingSleep()
    port = closed_port()

    def configs(_: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(f"http://127.0.0.1:{port}", "/v/{ref}")}

    with pytest.raises(EndpointUnavailable) as info:
        run(configs, resolve_r1, sleep=sleep)
    assert not isinstance(info.value, EndpointTimeout)
    assert sleep.delays == [0.1, 0.15]


@pytest.mark.parametrize(("fail_first", "succeeds"), [(2, True), (3, False)])
def test_500s_then_success_is_retried(fail_first: int, succeeds: bool) -> None:
    state = VaultState(fail_first=fail_first)

    def configs(base: str) -> dict[str, EndpointConfig]:
        return {"EMAIL_ADDRESS": endpoint(base, "/flaky/{ref}")}

    if succeeds:
        assert run(configs, resolve_r1, state=state) == VALUES["r1"]
    else:
        with pytest.raises(EndpointUnavailable) as info:
            run(configs, resolve_r1, state=state)
        assert "HTTP 500" in str(info.value)
        assert VALUES["r1"] not in str(info.value)
    assert state.hits["flaky"] == 3


def test_breaker_opens_then_half_opens() -> None:
    clock = FakeClock()
    state = VaultState(fail_first=10**6)

    def configs(base: str) -> dict[str, EndpointConfig]:
        cfg = endpoint(
            base,
            "/flaky/{ref}",
            retry={"attempts": 1},
            breaker={"failure_threshold": 3, "cooldown_seconds": 30},
        )
        return {"EMAIL_ADDRESS": cfg}

    async def scenario(resolver: ExternalResolver, vault: VaultState) -> list[str]:
        log = []
        breaker = resolver.breaker("EMAIL_ADDRESS")
        for _ in range(3):
            with pytest.raises(EndpointUnavailable):
                await resolver.resolve("EMAIL_ADDRESS", "r1")
        log.append(breaker.state.value)
        with pytest.raises(CircuitOpen):
            await resolver.resolve("EMAIL_ADDRESS", "r1")
        log.append(f"hits={vault.hits['flaky']}")
        clock.now += 30
        log.append(breaker.state.value)
        with pytest.raises(EndpointUnavailable):  # the half-open trial fails: open again
            await resolver.resolve("EMAIL_ADDRESS", "r1")
        log.append(breaker.state.value)
        clock.now += 30
        vault.fail_first = 0
        assert (await resolver.resolve("EMAIL_ADDRESS", "r1")).reveal() == VALUES["r1"]
        log.append(breaker.state.value)
        return log

    assert run(configs, scenario, clock=clock, state=state) == [
        "open",
        "hits=3",
        "half_open",
        "open",
        "closed",
    ]


def test_unknown_entity_type() -> None:
    async def scenario(resolver: ExternalResolver, _: VaultState) -> None:
        await resolver.resolve("PHONE_NUMBER", "r1")

    with pytest.raises(UnknownEntityType) as info:
        run(lambda base: {"EMAIL_ADDRESS": endpoint(base, "/none/{ref}")}, scenario)
    assert info.value.entity_type == "PHONE_NUMBER"


def test_no_value_or_credential_in_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def configs(base: str) -> dict[str, EndpointConfig]:
        return {
            "A": endpoint(base, "/oauth/{ref}", auth=_with_token_url(OAUTH, base)),
            "B": endpoint(base, "/basic/{ref}", auth=AUTH_CASES[1][2]),
            "C": endpoint(base, "/garbage/{ref}"),
            "D": endpoint(base, "/flaky/{ref}"),
            "E": endpoint(base, "/key-query/{ref}", auth=AUTH_CASES[4][2]),
        }

    async def scenario(resolver: ExternalResolver, _: VaultState) -> list[str]:
        out = [repr(await resolver.resolve(t, "r1")) for t in ("A", "B", "D", "E")]
        with pytest.raises(BadResponse):
            await resolver.resolve("C", "r1")
        return out

    assert run(configs, scenario) == ["FetchedValue(***)"] * 4
    assert any(r.name.startswith("coatcheck.middleware.external") for r in caplog.records)
    assert any(r.name == "aiohttp.access" for r in caplog.records)  # the server logged too

    def dump(records: list[logging.LogRecord]) -> str:
        return "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text}" for r in records)

    everything = dump(caplog.records)
    for value in VALUES.values():
        assert value not in everything
    # The test server's access log shows request lines, so a query-string API key appears
    # there (documented: prefer header keys); our own records carry no credential at all.
    ours = dump([r for r in caplog.records if r.name != "aiohttp.access"])
    for secret in (PASSWORD, API_KEY, CLIENT_SECRET, "tok-0"):
        assert secret not in ours


def test_fetched_value_does_not_leak() -> None:
    value = FetchedValue(VALUES["r1"])
    for shown in (repr(value), str(value), f"{value}", f"{value!r:>40}", repr([value])):
        assert VALUES["r1"] not in shown
    assert value.reveal() == VALUES["r1"]
    assert value != FetchedValue(VALUES["r1"])
    with pytest.raises(TypeError):
        hash(value)
