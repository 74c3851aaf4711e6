"""Live NDJSON followers served by the follower process (gateway.followers),
in a real `agentplane serve` (both backends): a follower from "now" or from
a cursor is handed over and gets every entry in order, with the same
response a follower served by the server gets; a browser's follower stays
in the server; keys and workspaces hold there as in the server, a revoked
key ending the stream; a follower process that dies is started again and
its followers resume from their cursor; it does not outlive the server; and
AGENTPLANE_FOLLOWER_PROCESS=off keeps every follower in the server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agentplane_cli.main import main as agentplane_main
from tests.conftest import free_port
from tests.e2e.test_log_followers import create, post_event
from tests.e2e.test_serve_process import serve

WAIT = 15.0
BROWSER = "http://localhost:5173"  # one of the default CORS origins


# The key /metrics is read with, by server, when keys are required.
_METRICS_KEY: dict[str, str] = {}


@contextlib.contextmanager
def server(
    tmp_path: Path, url: str, *args: str, metrics_key: str = "", **env: str
) -> Iterator[tuple[str, Any]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = ("--http-port", str(port), "--grpc-port", str(free_port()), *args)
    _METRICS_KEY[base] = metrics_key
    with serve(tmp_path, url, *argv, health=f"{base}/healthz", env={**os.environ, **env}) as proc:
        wait_until(lambda: metric(base, "agentplane_follower_process_up") == 1, "the follower process is up")
        yield base, proc


def metric(base: str, name: str, **labels: str) -> float | None:
    """A sample of /metrics (None when the page has none such)."""
    key = _METRICS_KEY.get(base)
    text = httpx.get(f"{base}/metrics", timeout=10, headers={"X-API-Key": key} if key else None).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def streams(base: str) -> tuple[float | None, float | None]:
    """Open streams (served by the server, by the follower process)."""
    return (
        metric(base, "agentplane_open_streams", kind="grpc"),
        metric(base, "agentplane_open_streams", kind="follower_process"),
    )


def wait_until(check: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


class Follower:
    """A `/v1/log:watch` stream read line by line on a task of its own."""

    def __init__(self, base: str, headers: dict[str, str] | None = None, **params: Any) -> None:
        self.client = httpx.AsyncClient(base_url=base, timeout=None, headers=headers)
        self.params = params
        self.lines: list[dict[str, Any]] = []
        self.response: httpx.Response | None = None
        self.opened = asyncio.Event()
        self.ended = False
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async with self.client.stream("GET", "/v1/log:watch", params=self.params) as resp:
                self.response = resp
                self.opened.set()
                async for line in resp.aiter_lines():
                    self.lines.append(json.loads(line))
        finally:
            self.ended = True
            self.opened.set()

    def seqs(self) -> list[int]:
        return [x["result"]["entry"]["seq"] for x in self.lines if "entry" in x.get("result", {})]

    async def wait_for(self, check: Any, what: str) -> None:
        async with asyncio.timeout(WAIT):
            while not check(self):
                assert not self.task.done() or check(self), f"{what}: the stream ended: {self.lines[-2:]}"
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        await self.client.aclose()


@contextlib.asynccontextmanager
async def following(base: str, **kwargs: Any) -> AsyncIterator[Follower]:
    follower = Follower(base, **kwargs)
    try:
        await asyncio.wait_for(follower.opened.wait(), WAIT)
        yield follower
    finally:
        await follower.close()


async def post_events(base: str, sid: str, n: int, headers: dict[str, str] | None = None) -> None:
    """A session and `n` events in it."""
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
        await create(http, sid)
        for i in range(n):
            await post_event(http, sid, i)


def logged(base: str, after: int = 0, headers: dict[str, str] | None = None) -> list[int]:
    """The seqs the log holds after `after` (a read to the end, served by the server)."""
    params = {"after_seq": after, "stop_at_end": "true"}
    text = httpx.get(f"{base}/v1/log:watch", params=params, headers=headers, timeout=30).text
    return [json.loads(line)["result"]["entry"]["seq"] for line in text.splitlines()]


async def test_followers_are_handed_over_and_get_every_entry_in_order(
    tmp_path: Path, database_url: str
) -> None:
    with server(tmp_path, database_url) as (base, _):
        async with following(base, after_seq=-1) as live:
            await asyncio.to_thread(wait_until, lambda: streams(base) == (0, 1), "one stream handed over")
            async with following(base, headers={"Origin": BROWSER}, after_seq=-1) as browser:
                await asyncio.to_thread(wait_until, lambda: streams(base) == (1, 1), "the browser's stays")
                await post_events(base, "s1", 30)
                truth = await asyncio.to_thread(logged, base)
                assert len(truth) == 31  # the session, and its events
                for follower in (live, browser):
                    await follower.wait_for(lambda f: f.seqs() == truth, "every entry, in order")
                # Both begin with the heartbeat telling the client where "now" is.
                assert live.lines[0] == {"result": {"heartbeat": live.lines[0]["result"]["heartbeat"]}}
                assert live.lines[0]["result"]["heartbeat"]["cursor"] == 0
                assert live.response is not None and browser.response is not None
                for resp in (live.response, browser.response):
                    assert resp.status_code == 200 and resp.http_version == "HTTP/1.1"
                    assert resp.headers["content-type"] == "application/x-ndjson"
                    assert resp.headers["transfer-encoding"] == "chunked"
                assert browser.response.headers["access-control-allow-origin"] == BROWSER
                # The follower process closes the connection when the stream ends, and says so.
                assert live.response.headers["connection"] == "close"

                # From a cursor: what follows it (read from the table by the
                # follower process), then what comes, without a gap or a repeat.
                async with following(base, after_seq=truth[9]) as resumed:
                    await asyncio.to_thread(wait_until, lambda: streams(base) == (1, 2), "two handed over")
                    await resumed.wait_for(lambda f: f.seqs() == truth[10:], "the entries after the cursor")
                    await post_events(base, "s2", 3)
                    now = await asyncio.to_thread(logged, base)
                    await resumed.wait_for(lambda f: f.seqs() == now[10:], "and the new ones")
                    await live.wait_for(lambda f: f.seqs() == now, "the first follower too")
        # Followers that leave are no longer counted.
        await asyncio.to_thread(wait_until, lambda: streams(base) == (0, 0), "no stream left")


def _key(url: str, workspace: str, scopes: str) -> tuple[str, str]:
    """(key id, secret) from `agentplane keys create`."""
    out = io.StringIO()
    args = ["keys", "--database-url", url, "create", "--name", f"k-{workspace}", "--workspace", workspace]
    with contextlib.redirect_stdout(out):
        assert agentplane_main([*args, "--scopes", scopes]) == 0, out.getvalue()
    lines = out.getvalue().strip().splitlines()
    return lines[0].split()[3], lines[-1]


async def test_keys_and_workspaces_hold_in_the_follower_process(tmp_path: Path, database_url: str) -> None:
    from service.store.database import migrate

    migrate(database_url)
    # (The CLI runs its own event loop: on a thread of its own.)
    reader_id, reader = await asyncio.to_thread(_key, database_url, "team-a", "read:events")
    writer_a = (
        await asyncio.to_thread(_key, database_url, "team-a", "read:events,write:events,write:sessions")
    )[1]
    writer_b = (
        await asyncio.to_thread(_key, database_url, "team-b", "read:events,write:events,write:sessions")
    )[1]
    admin = (await asyncio.to_thread(_key, database_url, "default", "admin"))[1]
    env = {"AGENTPLANE_KEY_CACHE_SECONDS": "0.2"}
    with server(tmp_path, database_url, "--auth", "keys", metrics_key=admin, **env) as (base, _):
        async with following(base, headers={"X-API-Key": reader}, after_seq=-1) as team_a:
            await asyncio.to_thread(wait_until, lambda: streams(base)[1] == 1, "the stream handed over")
            await post_events(base, "in-b", 2, {"X-API-Key": writer_b})
            await post_events(base, "in-a", 2, {"X-API-Key": writer_a})
            start = team_a.lines[0]["result"]["heartbeat"]["cursor"]
            mine = await asyncio.to_thread(logged, base, start, {"X-API-Key": writer_a})
            assert len(mine) == 3  # the session and its two events
            await team_a.wait_for(lambda f: f.seqs() == mine, "team a's entries and no others")

            revoke = ["keys", "--database-url", database_url, "revoke", reader_id]
            assert await asyncio.to_thread(agentplane_main, revoke) == 0
            # The stream re-checks its key before a message, at most every second.
            for i in range(20):
                if team_a.ended:
                    break
                await post_events(base, f"after-{i}", 1, {"X-API-Key": writer_a})
                await asyncio.sleep(0.3)
            await team_a.wait_for(lambda f: f.ended, "the stream ends")
        last = team_a.lines[-1]
        assert last["error"]["code"] == 16, last  # UNAUTHENTICATED
        assert "revoked" in last["error"]["message"]
        everything = await asyncio.to_thread(logged, base, start, {"X-API-Key": writer_a})
        got = team_a.seqs()
        assert got[:3] == mine and got == everything[: len(got)] and len(got) < len(everything)


async def test_a_dead_follower_process_is_started_again_and_followers_resume(
    tmp_path: Path, database_url: str
) -> None:
    with server(tmp_path, database_url) as (base, proc):
        (child,) = children(proc.pid)
        async with following(base, after_seq=-1) as first:
            await post_events(base, "s1", 3)
            seen = await asyncio.to_thread(logged, base)
            await first.wait_for(lambda f: f.seqs() == seen, "the first entries")
            os.kill(child, signal.SIGKILL)
            await first.wait_for(lambda f: f.ended, "the stream is cut")
        cursor = first.seqs()[-1]
        await asyncio.to_thread(
            wait_until, lambda: metric(base, "agentplane_follower_process_up") == 0, "down"
        )
        await post_events(base, "s2", 2)  # writes go on meanwhile
        await asyncio.to_thread(
            wait_until, lambda: metric(base, "agentplane_follower_process_up") == 1, "up again"
        )
        assert children(proc.pid) not in ([], [child])
        async with following(base, after_seq=cursor) as resumed:
            await asyncio.to_thread(wait_until, lambda: streams(base)[1] == 1, "handed to the new process")
            rest = await asyncio.to_thread(logged, base, cursor)
            assert len(rest) == 3
            await resumed.wait_for(lambda f: f.seqs() == rest, "the rest, no gap, no repeat")


def test_the_follower_process_does_not_outlive_the_server(tmp_path: Path, database_url: str) -> None:
    with server(tmp_path, database_url) as (_, proc):
        (child,) = children(proc.pid)
        proc.kill()  # no shutdown at all: the child sees its channel close
        proc.wait()

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            # A zombie until init reaps it: exited all the same.
            return Path(f"/proc/{child}/stat").read_text().split(")")[1].split()[0] == "Z"

        wait_until(gone, "the follower process exits", timeout=10)


async def test_off_every_follower_stays_in_the_server(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = ("--http-port", str(port), "--grpc-port", str(free_port()))
    env = {**os.environ, "AGENTPLANE_FOLLOWER_PROCESS": "off"}
    with serve(tmp_path, database_url, *argv, health=f"{base}/healthz", env=env) as proc:
        assert children(proc.pid) == []
        assert metric(base, "agentplane_follower_process_up") is None
        async with following(base, after_seq=-1) as live:
            await asyncio.to_thread(wait_until, lambda: streams(base) == (1, 0), "served in the server")
            await post_events(base, "s1", 2)
            truth = await asyncio.to_thread(logged, base)
            await live.wait_for(lambda f: f.seqs() == truth, "every entry")
