"""Time ``bump_text`` in-process: one image in a ~6,000-line values file and in a 20-line kustomization.

Usage: ``.venv/bin/python bench/bump.py [--runs N]``. Prints a Markdown table of the median and 95th
percentile wall time and the median CPU time of N runs, for the bump as it is ("after") and as it
was before the confirm step compared events in one loop, line starts were found by ``str.split`` and
the cycle collector was paused for the whole bump ("before": the old code is kept below and swapped
in for those rows). Goal: under 50 ms for the large file, judged on the CPU median, since on a
shared machine the wall clock also counts the time spent waiting for a core (the load average is
printed with the table). The "parse only" row is the floor: one pass of the YAML parser over the
file, which a bump needs twice (locate, confirm).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from operator import attrgetter
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent  # noqa: E402

from bot.core import manifest, yaml_nodes, yaml_scalars  # noqa: E402
from bot.core.manifest import ImageUpdate, bump_text  # noqa: E402
from bot.core.yaml_scalars import Parsed, parse, reads_as_non_string  # noqa: E402
from bot.errors import ManifestError  # noqa: E402

LARGE_VALUES = ROOT / "tests" / "fixtures" / "manifests" / "large-values.yaml"
GOAL_MS = 50.0
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: web-dev
namePrefix: dev-
resources:
  - ../../base
  - ingress.yaml
commonLabels:
  environment: dev
patches:
  - path: replicas.yaml
images:
  - name: ghcr.io/acme/web   # the front end
    newTag: 1.4.2
  - name: ghcr.io/acme/api
    newTag: "2.0.1"
  - name: redis
    newTag: 7.2.4-alpine
configMapGenerator:
  - {name: web-config, literals: [LOG_LEVEL=info]}
"""

# ---- the code as it was (before) ------------------------------------------------------------------

_OLD_BREAKS = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_OLD_SIGNATURE = {
    ScalarEvent: attrgetter("value", "anchor", "tag", "style"),
    MappingStartEvent: attrgetter("anchor", "tag", "flow_style"),
    SequenceStartEvent: attrgetter("anchor", "tag", "flow_style"),
    AliasEvent: attrgetter("anchor"),
}


def _old_line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in _OLD_BREAKS.finditer(text))]


def _old_parse_events(text: str, source: str) -> list[Any]:
    events: list[Any] = []
    parser = yaml_scalars._CParser(text)
    while parser.check_event():
        events.append(parser.get_event())
    return events


def _old_signature(events: list[Any]) -> list[tuple[Any, Any]]:
    lookup_getter = _OLD_SIGNATURE.get
    return [(e.__class__, get(e) if (get := lookup_getter(e.__class__)) else None) for e in events]


def _old_confirm(
    old: Parsed,
    new_text: str,
    *,
    source: str,
    expected: Mapping[int, str],
    appended: Mapping[int, tuple[str, str]],
) -> None:
    with yaml_scalars.paused_gc():
        new_events = _old_parse_events(new_text, source)
        want: list[tuple[Any, Any] | None] = list(_old_signature(old.events))
        checks = dict(expected)
        for number in sorted(appended, reverse=True):
            want[number:number] = [None, None]
            checks = {n + 2 if n >= number else n: value for n, value in checks.items()}
            checks.update({number: appended[number][0], number + 1: appended[number][1]})
        got: list[tuple[Any, Any] | None] = list(_old_signature(new_events))
        if len(got) != len(want):
            raise ManifestError("the structure of the file changed")
        for number, value in checks.items():
            event = new_events[number]
            reads_as_string = bool(getattr(event, "style", None)) or not reads_as_non_string(value)
            if not isinstance(event, ScalarEvent) or event.value != value or not reads_as_string:
                raise ManifestError(f"it reads {getattr(event, 'value', None)!r}")
            got[number] = want[number] = None
        if got != want:
            raise ManifestError("a value that should not change changed")


@contextlib.contextmanager
def before() -> Iterator[None]:
    """The old line starts, parse loop and confirm step, and the collector paused per parse only."""
    with (
        mock.patch.object(yaml_nodes, "_line_starts", _old_line_starts),
        mock.patch.object(yaml_scalars, "parse_events", _old_parse_events),
        mock.patch.object(yaml_scalars, "confirm", _old_confirm),
        mock.patch.object(manifest, "paused_gc", contextlib.nullcontext),
    ):
        yield


# ---- measuring ------------------------------------------------------------------------------------


def measure(action: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Wall-clock median and 95th percentile, and median CPU time, in ms, after warm-up runs."""
    for _ in range(3):
        action()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    wall.sort()
    p95 = wall[min(len(wall) - 1, round(0.95 * (len(wall) - 1)))]
    return statistics.median(wall), p95, statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    large = LARGE_VALUES.read_text()
    large_update = [ImageUpdate("ghcr.io/acme/svc056", "9.9.9")]
    small_update = [ImageUpdate("ghcr.io/acme/api", "2.0.2")]
    after_text = bump_text(large, large_update).text
    with before():
        assert bump_text(large, large_update).text == after_text
    assert bump_text(KUSTOMIZATION, small_update).changes
    cases: list[tuple[str, str, Callable[[], object], contextlib.AbstractContextManager[None], str]] = []
    for label, when in (("before", before), ("after", contextlib.nullcontext)):
        cases += [
            (
                f"{label}: bump 1 image, Helm values",
                large,
                lambda: bump_text(large, large_update),
                when(),
                "x",
            ),
            (
                f"{label}: bump 1 image, kustomization",
                KUSTOMIZATION,
                lambda: bump_text(KUSTOMIZATION, small_update),
                when(),
                "",
            ),
        ]
    cases.append(
        (
            "parse only (floor), Helm values",
            large,
            lambda: parse(large, "bench"),
            contextlib.nullcontext(),
            "",
        )
    )
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"bump_text, {runs} runs each (load average {load}, {os.cpu_count()} CPUs)\n")
    print("| case | lines | median ms | p95 ms | CPU median ms | goal |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, text, action, context, goal in cases:
        with context:
            median, p95, cpu = measure(action, runs)
        verdict = (f"< {GOAL_MS:.0f} ms CPU " + ("(met)" if cpu < GOAL_MS else "(missed)")) if goal else ""
        print(f"| {name} | {text.count(chr(10))} | {median:.2f} | {p95:.2f} | {cpu:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
