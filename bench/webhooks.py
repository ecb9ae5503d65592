"""Webhook acknowledgement speed: Ferry's real app next to a bare aiohttp handler, in one run.

Each server runs in a child process on 127.0.0.1 (so the client's event loop does not share a CPU with it);
the client sends signed deliveries of a real ``push`` payload over a pool of keep-alive connections, each
with a fresh X-GitHub-Delivery id, and prints a Markdown table. Goals (issue 4): Ferry keeps at least half
the bare handler's throughput, and its p99 acknowledgement latency stays under 5 ms.

    .venv/bin/python bench/webhooks.py [--deliveries 5000] [--concurrency 4] [--rounds 10] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bot.logs import configure_logging
from bot.metrics import Metrics
from bot.server import WEBHOOK_PATH, WebhookDelivery, create_app, run_server, signature_for
from bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789"
PAYLOAD = REPO / "tests" / "fixtures" / "github-webhooks" / "push.json"
WARM_UP = 300
GOAL_RATIO = 0.5
GOAL_P99_MS = 5.0


@dataclass(frozen=True)
class Result:
    name: str
    sent: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float  # the server process's own CPU time while it was measured

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.cpu_seconds / self.sent * 1e6

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _noop(delivery: WebhookDelivery) -> None:
    return None


async def _bare(request: web.Request) -> web.Response:
    return web.Response(status=202)


async def _serve(kind: str, port: int) -> None:
    if kind == "ferry":
        app = create_app(Settings(webhook_secret=SecretStr(SECRET)), _noop, metrics=Metrics())
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
    servers = {kind: _start(kind) for kind in ("bare", "ferry")}
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
    args = parser.parse_args()
    body = PAYLOAD.read_bytes()

    bare, ferry = measure(body, args.deliveries, args.concurrency, args.rounds, args.max_seconds)

    ratio = ferry.rate / bare.rate
    load = os.getloadavg()[0]
    print(
        f"{args.deliveries} deliveries of {PAYLOAD.name} ({len(body)} bytes) per server, "
        f"{args.concurrency} keep-alive connections, {args.rounds} alternating rounds, "
        f"each server in its own process; {os.cpu_count()} CPUs, load average {load:.2f} at the end\n"
    )
    print("| server | deliveries | deliveries/s | p50 ack ms | p99 ack ms | server CPU µs/delivery |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for result in (bare, ferry):
        name = (
            "bare aiohttp handler (202 only)" if result is bare else "ferry (verify, parse, dedupe, enqueue)"
        )
        print(
            f"| {name} | {result.sent} | {result.rate:,.0f} | "
            f"{result.percentile(50):.2f} | {result.percentile(99):.2f} | {result.cpu_us_per_delivery:.0f} |"
        )
    p99 = ferry.percentile(99)
    print(
        f"\nferry / bare throughput: {ratio:.2f} (goal >= {GOAL_RATIO}: "
        f"{'met' if ratio >= GOAL_RATIO else 'MISSED'}); ferry p99 {p99:.2f} ms "
        f"(goal < {GOAL_P99_MS} ms: {'met' if p99 < GOAL_P99_MS else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
