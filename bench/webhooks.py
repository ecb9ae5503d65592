"""Webhook acknowledgement speed: Ferry's real app next to a bare aiohttp handler, in one run.

Each server runs in a child process on 127.0.0.1 (so the client's event loop does not share a CPU with it);
the client sends signed deliveries of a real ``push`` payload over a pool of keep-alive connections, each
with a fresh X-GitHub-Delivery id, and prints a Markdown table. Goals (issue 4): Ferry keeps at least half
the bare handler's throughput, and its p99 acknowledgement latency stays under 5 ms.

Three servers: the bare handler, Ferry's acknowledgement as it was ("before", kept below and swapped into
its own server process) and as it is ("after"). This Python client costs more CPU per request than the
servers do, so it caps their throughput alike; ``wrk`` does not, and then the server's CPU per delivery
decides: the table gives both ratios, and the goal is judged on the lower.

    .venv/bin/python bench/webhooks.py [--deliveries 5000] [--concurrency 4] [--rounds 10] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bot import server
from bot.logs import configure_logging
from bot.metrics import Metrics
from bot.reconciler import Reconciler
from bot.server import WEBHOOK_PATH, WebhookDelivery, create_app, run_server, signature_for
from bot.settings import Settings
from bot.webhooks import WebhookRouter

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789"
PAYLOAD = REPO / "tests" / "fixtures" / "github-webhooks" / "push.json"
REPOSITORY = "acme/gitops"  # the push payload's repository
WARM_UP = 300
GOAL_RATIO = 0.5
KINDS = ("bare", "ferry before", "ferry")
NAMES = {
    "bare": "bare aiohttp handler (202 only)",
    "ferry before": "ferry before (verify, parse, dedupe, enqueue)",
    "ferry": "ferry after (verify, parse, dedupe, route, queue a pass)",
}
GOAL_P99_MS = 5.0


@dataclass(frozen=True)
class Result:
    name: str
    sent: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float  # the server process's own CPU time while it was measured
    wrk_percentiles: tuple[float, float] | None = None  # (p50, p99) ms as wrk reported them (worst round)

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.cpu_seconds / self.sent * 1e6

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def percentile(self, q: int) -> float:
        if self.wrk_percentiles is not None:
            return self.wrk_percentiles[0 if q == 50 else 1]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _noop(delivery: WebhookDelivery) -> None:
    return None


class _Queue:
    """The part of ``bot.reconciler.Reconciler`` a push delivery reaches: the repository is installed and
    owned, and a pass is queued for it (coalesced, as the reconciler's are)."""

    def __init__(self) -> None:
        self.repos = {REPOSITORY: 1}
        self.dirty: set[str] = set()

    def owns(self, repo: str) -> bool:
        return True

    def trigger(self, repo: str, *, full: bool = True) -> None:
        self.dirty.add(repo)


async def _bare(request: web.Request) -> web.Response:
    return web.Response(status=202)


# ---- the acknowledgement as it was (before): the body read under a timer even when it had all arrived,
# the HMAC through an hmac object and its hex string, the debug summary built for every delivery ----------


async def _handle_before(self: Any, request: web.Request) -> web.Response:
    received_at = time.time()
    signature = request.headers.get(server.SIGNATURE_HEADER)
    if request.content_length is not None and request.content_length > self._max_body_bytes:
        return self._reject(
            request, server.EVENT_UNVERIFIED, server.OUTCOME_TOO_LARGE, 413, server.MSG_TOO_LARGE
        )
    if not signature:
        return self._reject(
            request, server.EVENT_UNVERIFIED, server.OUTCOME_UNSIGNED, 401, server.MSG_UNSIGNED
        )
    try:
        async with asyncio.timeout(self._body_timeout):
            body = await self._read_body(request)
    except TimeoutError:
        message = server.MSG_BODY_TIMEOUT.format(seconds=self._body_timeout)
        return self._reject(request, server.EVENT_UNVERIFIED, server.OUTCOME_MALFORMED, 408, message)
    if body is None:
        return self._reject(
            request, server.EVENT_UNVERIFIED, server.OUTCOME_TOO_LARGE, 413, server.MSG_TOO_LARGE
        )
    expected = server.signature_for(self._secret, body)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape")):
        return self._reject(
            request, server.EVENT_UNVERIFIED, server.OUTCOME_BAD_SIGNATURE, 401, server.MSG_BAD_SIGNATURE
        )

    # From here on the request comes from whoever holds the webhook secret: GitHub.
    event = request.headers.get(server.EVENT_HEADER, "")
    delivery_id = request.headers.get(server.DELIVERY_HEADER, "")
    for header, value in ((server.EVENT_HEADER, event), (server.DELIVERY_HEADER, delivery_id)):
        if not value:
            message = server.MSG_MISSING_HEADER.format(header=header)
            return self._reject(request, server.EVENT_UNVERIFIED, server.OUTCOME_MALFORMED, 400, message)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        form = request.content_type == "application/x-www-form-urlencoded"
        message = (
            server.MSG_FORM_ENCODED if form else server.MSG_NOT_JSON.format(reason=server._json_reason(exc))
        )
        return self._reject(request, event, server.OUTCOME_MALFORMED, 400, message)
    if not isinstance(payload, dict):
        return self._reject(request, event, server.OUTCOME_MALFORMED, 400, server.MSG_NOT_OBJECT)

    if event == server.PING_EVENT:
        self._count(event, server.OUTCOME_PING)
        server.log.info("ping received", extra={"delivery": delivery_id, "hook_id": payload.get("hook_id")})
        return web.json_response({"ok": True, "zen": payload.get("zen")})
    if self._recent.seen(delivery_id):
        self._count(event, server.OUTCOME_DUPLICATE)
        server.log.info("duplicate delivery ignored", extra={"event": event, "delivery": delivery_id})
        return web.json_response({"ok": True, "duplicate": True, "delivery": delivery_id})

    refusal = self._admit() if self._admit is not None else None
    if refusal is not None:
        return self._reject(request, event, server.OUTCOME_BUSY, 503, refusal)
    self._recent.add(delivery_id)
    self._count(event, server.OUTCOME_ACCEPTED)
    # DEBUG, not INFO: a line per delivery costs more than the rest of the ack path together; the
    # metrics count every delivery, and the reconciler logs the pass each one triggers.
    server.log.debug("webhook delivery accepted", extra=server._summary(event, delivery_id, payload))
    delivery = server.WebhookDelivery(event, delivery_id, payload, received_at)
    task = asyncio.get_running_loop().create_task(
        self._run(delivery, self._deliver(delivery)), name=f"delivery {delivery_id}"
    )
    self.tasks.add(task)
    task.add_done_callback(self.tasks.discard)
    return web.json_response({"ok": True, "delivery": delivery_id}, status=202)


async def _serve(kind: str, port: int) -> None:
    if kind == "ferry before":
        server._Webhooks.handle = _handle_before  # type: ignore[method-assign]
    if kind.startswith("ferry"):
        # After: the router Ferry serves with, over a reconciler that only queues (as the real one does
        # for a pass already queued); before: a task per delivery, as every delivery had then.
        deliver = _noop if kind == "ferry before" else WebhookRouter(cast(Reconciler, _Queue())).accept
        app = create_app(Settings(webhook_secret=SecretStr(SECRET)), deliver, metrics=Metrics())
        await run_server(app, "127.0.0.1", port)
        return
    bare = web.Application()
    bare.router.add_post(WEBHOOK_PATH, _bare)
    runner = web.AppRunner(bare, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def _server_process(kind: str, port: int) -> None:
    # As in production: one JSON line per accepted delivery at INFO (written to /dev/null here).
    with open(os.devnull, "w") as sink:
        configure_logging("INFO", "json", secrets=[SECRET], stream=sink)
        asyncio.run(_serve(kind, port))


def _wait_until_listening(port: int, kind: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)  # the child process is still importing
        else:
            return
    raise SystemExit(f"the {kind} server did not start listening on 127.0.0.1:{port}")


async def _drive(
    url: str, body: bytes, count: int, concurrency: int, deadline: float
) -> tuple[int, list[float]]:
    signature = signature_for(SECRET.encode(), body)
    latencies: list[float] = []
    next_id = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for number in next_id:
                if time.perf_counter() > deadline:
                    return
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": f"{url}-{time.monotonic_ns()}-{number}",
                    "X-Hub-Signature-256": signature,
                }
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 202:
                        raise SystemExit(f"{url} answered {response.status}: {await response.text()}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


WRK_SCRIPT = """
local counter = 0
wrk.method = "POST"
wrk.body = io.open("{body}", "rb"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = "{signature}"
request = function()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = "{prefix}-" .. counter
  return wrk.format()
end
"""
_WRK_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _drive_wrk(
    url: str, body_path: Path, seconds: float, connections: int
) -> tuple[int, float, dict[str, float]]:
    """(requests, seconds, {"50": ms, "99": ms}) of one wrk run: one thread, fresh delivery ids."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            WRK_SCRIPT.format(
                body=body_path,
                signature=signature_for(SECRET.encode(), body_path.read_bytes()),
                prefix=f"wrk-{time.monotonic_ns()}",
            )
        )
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script.name, url]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise SystemExit(f"{url} answered some deliveries with an error:\n{out}")
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if done is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    took = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    latency = {m.group(1): float(m.group(2)) * _WRK_UNITS[m.group(3)] for m in _WRK_LATENCY.finditer(out)}
    return int(done.group(1)), took, latency


def measure_wrk(body_path: Path, seconds: float, connections: int, rounds: int) -> list[Result]:
    """As ``measure``, with wrk as the client: ``rounds`` runs of ``seconds`` per server, alternating."""
    servers = {kind: _start(kind) for kind in KINDS}
    sent = dict.fromkeys(servers, 0)
    took = dict.fromkeys(servers, 0.0)
    worst: dict[str, list[float]] = {kind: [0.0, 0.0] for kind in servers}
    medians: dict[str, list[float]] = {kind: [] for kind in servers}
    try:
        for _, url in servers.values():
            _drive_wrk(url, body_path, 1, connections)  # warm-up
        cpu_before = {kind: _cpu_seconds(process.pid) for kind, (process, _) in servers.items()}
        for _ in range(rounds):
            for kind, (_, url) in servers.items():
                count, spent, latency = _drive_wrk(url, body_path, seconds, connections)
                sent[kind] += count
                took[kind] += spent
                medians[kind].append(latency.get("50", 0.0))
                worst[kind][1] = max(worst[kind][1], latency.get("99", 0.0))
        cpu = {kind: _cpu_seconds(process.pid) - cpu_before[kind] for kind, (process, _) in servers.items()}
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.join(5)
    return [
        Result(
            kind, sent[kind], took[kind], [], cpu[kind], (statistics.median(medians[kind]), worst[kind][1])
        )
        for kind in servers
    ]


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process, from /proc (Linux); 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(kind: str) -> tuple[BaseProcess, str]:
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=_server_process, args=(kind, port), daemon=True
    )
    process.start()
    _wait_until_listening(port, kind)
    return process, f"http://127.0.0.1:{port}{WEBHOOK_PATH}"


def measure(body: bytes, count: int, concurrency: int, rounds: int, max_seconds: float) -> list[Result]:
    """Alternate the two servers in short rounds, so a busy neighbour on the machine slows both alike."""
    servers = {kind: _start(kind) for kind in KINDS}
    sent = dict.fromkeys(servers, 0)
    seconds = dict.fromkeys(servers, 0.0)
    latencies: dict[str, list[float]] = {kind: [] for kind in servers}
    try:
        deadline = time.perf_counter() + max_seconds
        for _, url in servers.values():
            asyncio.run(_drive(url, body, WARM_UP, concurrency, deadline))
        cpu_before = {kind: _cpu_seconds(process.pid) for kind, (process, _) in servers.items()}
        for _ in range(rounds):
            for kind, (_, url) in servers.items():
                started = time.perf_counter()
                done, observed = asyncio.run(_drive(url, body, count // rounds, concurrency, deadline))
                seconds[kind] += time.perf_counter() - started
                sent[kind] += done
                latencies[kind] += observed
        cpu = {kind: _cpu_seconds(process.pid) - cpu_before[kind] for kind, (process, _) in servers.items()}
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.join(5)
    return [Result(kind, sent[kind], seconds[kind], latencies[kind], cpu[kind]) for kind in servers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000, help="signed deliveries per server")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections in the pool")
    parser.add_argument("--rounds", type=int, default=10, help="alternations between the two servers")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop the whole run after this")
    parser.add_argument(
        "--wrk",
        type=float,
        metavar="SECONDS",
        help="drive the servers with wrk instead (one thread, --concurrency connections), SECONDS per round",
    )
    args = parser.parse_args()
    body = PAYLOAD.read_bytes()

    if args.wrk is not None:
        if shutil.which("wrk") is None:
            raise SystemExit("--wrk: wrk is not installed (apt-get install wrk)")
        results = measure_wrk(PAYLOAD, args.wrk, args.concurrency, args.rounds)
    else:
        results = measure(body, args.deliveries, args.concurrency, args.rounds, args.max_seconds)
    bare = results[0]
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{args.deliveries} deliveries of {PAYLOAD.name} ({len(body)} bytes) per server, "
        f"{args.concurrency} keep-alive connections, {args.rounds} alternating rounds, "
        f"each server in its own process; {os.cpu_count()} CPUs, load average {load} at the end\n"
    )
    print(
        "| server | deliveries | deliveries/s | / bare | p50 ack ms | p99 ack ms | server CPU µs/delivery "
        "| bare CPU / its CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        print(
            f"| {NAMES[result.name]} | {result.sent} | {result.rate:,.0f} | {result.rate / bare.rate:.2f} | "
            f"{result.percentile(50):.2f} | {result.percentile(99):.2f} | {result.cpu_us_per_delivery:.0f} | "
            f"{bare.cpu_us_per_delivery / result.cpu_us_per_delivery:.2f} |"
        )
    ferry = results[-1]
    if args.wrk is not None:
        ratio, judged = ferry.rate / bare.rate, "throughput under wrk"
    else:  # this client caps both servers: the CPU ratio is what wrk would show
        ratio = min(ferry.rate / bare.rate, bare.cpu_us_per_delivery / ferry.cpu_us_per_delivery)
        judged = "the lower of the throughput and CPU ratios"
    p99 = ferry.percentile(99)
    print(
        f"\nferry after / bare: {ratio:.2f}, {judged} (goal >= {GOAL_RATIO}: "
        f"{'met' if ratio >= GOAL_RATIO else 'MISSED'}); ferry p99 {p99:.2f} ms "
        f"(goal < {GOAL_P99_MS} ms: {'met' if p99 < GOAL_P99_MS else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
