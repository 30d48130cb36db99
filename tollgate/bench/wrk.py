"""Driving wrk: request scripts, runs pinned to a core, and its report parsed."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True, kw_only=True, slots=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    #: Non-2xx answers and socket errors: every benchmarked request expects a 200.
    errors: int


def parse(report: str) -> WrkResult:
    rate = _RATE.search(report)
    if rate is None:
        raise ValueError(f"no Requests/sec in wrk's report:\n{report}")
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(report)}
    errors = sum(int(n) for n in _NON_2XX.findall(report))
    for counts in _SOCKET.findall(report):
        errors += sum(int(n) for n in counts)
    return WrkResult(
        rps=float(rate.group(1)),
        p50_ms=percentiles.get(50, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        errors=errors,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Traffic:
    """What each request looks like; one of ``bodies`` or ``header_values`` varies per call."""

    method: str
    path: str
    headers: dict[str, str]
    bodies: tuple[str, ...] = ()
    varied_header: str | None = None
    header_values: tuple[str, ...] = ()
    #: Pause each connection this long between requests: a paced, below-saturation load.
    delay_ms: float | None = None

    def paced(self, connections: int, rate: float) -> Traffic:
        """About ``rate`` requests/s from ``connections`` connections. wrk cannot fix a
        rate, but each connection pausing ``connections / rate`` seconds between requests
        offers about that."""
        return replace(self, delay_ms=1000 * connections / rate)

    def lua(self) -> str:
        def table(items: tuple[str, ...]) -> str:
            return "{" + ", ".join(json.dumps(item) for item in items) + "}"

        headers = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in self.headers.items())
        return "\n".join(
            [
                f"wrk.method = {json.dumps(self.method)}",
                f"local path = {json.dumps(self.path)}",
                f"local headers = {{{headers}}}",
                f"local bodies = {table(self.bodies)}",
                f"local values = {table(self.header_values)}",
                f"local varied = {json.dumps(self.varied_header) if self.varied_header else 'nil'}",
                "request = function()",
                "  if varied then headers[varied] = values[math.random(#values)] end",
                "  local body = nil",
                "  if #bodies > 0 then body = bodies[math.random(#bodies)] end",
                "  return wrk.format(nil, path, headers, body)",
                "end",
                *(
                    [f"delay = function() return {self.delay_ms:.3f} end"]
                    if self.delay_ms is not None
                    else []
                ),
                "",
            ]
        )


def run(
    url: str, traffic: Traffic, workdir: Path, *, seconds: float, connections: int, core: str | None
) -> WrkResult:
    lua = workdir / "traffic.lua"
    lua.write_text(traffic.lua())
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url]
    if core is not None:
        command = ["taskset", "-c", core, *command]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return parse(done.stdout)
