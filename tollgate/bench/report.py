"""The benchmark's report: a Markdown table and a chart of the same run."""

from __future__ import annotations

from pathlib import Path

from tollgate.bench.harness import Results, Row


def _ratio(row: Row) -> str:
    if row.spread is None:
        return f"{row.ratio:.2f}"
    return f"{row.ratio:.2f} ({row.spread[0]:.2f} to {row.spread[1]:.2f})"


def markdown(results: Results) -> str:
    m = results.machine
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}; "
        f"{results.profile['runs']} run(s) of {results.profile['seconds']} s, "
        f"{results.profile['connections']} connections, median. A ratio with a range was "
        "measured in pairs, each run right after a run of the minimal handler: the median "
        "of the pairs' ratios (their range in brackets).",
    ]
    if results.rows:
        lines += [
            "",
            "| row | requests/s | p50 ms | p99 ms | x minimal aiohttp handler | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {_ratio(r)} "
            f"| {r.errors} |"
            for r in results.rows
        ]
    for load, p in results.propagation_ms.items():
        lines += [
            "",
            f"Propagation, the gateway {load} ({p['changes']:.0f} payments, the payment API's "
            f"answer → changed gateway decision): p50 {p['p50']:.1f} ms, "
            f"p99 {p['p99']:.1f} ms, max {p['max']:.1f} ms.",
        ]
    if results.billing:
        lines += [
            "",
            "| invoice run | accounts | accounts/s | ms per account | lost view rebuilt, "
            "accounts/s | console overview, ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {b['backend']} | {b['accounts']:,} | {b['accounts_per_second']:,.0f} "
            f"| {b['ms_per_account']} | {b.get('rebuild_accounts_per_second', 0):,.0f} "
            f"| {b.get('console_overview_ms', '—')} |"
            for b in results.billing
        ]
    if results.workers:
        one = results.workers[0]["accounts_per_second"]
        lines += [
            "",
            "| workers (PostgreSQL) | accounts | seconds | accounts/s | x one worker |",
            "|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {w['workers']} | {w['accounts']:,} | {w['seconds']} "
            f"| {w['accounts_per_second']:,.0f} | {w['accounts_per_second'] / one:.2f} |"
            for w in results.workers
        ]
    if results.profiles:
        lines += ["", "Flame graphs (py-spy, one extra run each, outside the figures above):", ""]
        lines += [f"- [{name}]({path})" for name, path in results.profiles.items()]
    lines += [f"\n{note}" for note in results.notes]
    return "\n".join(lines) + "\n"


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results.rows
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.5))
    colours = ["#1f6feb" if r.name.startswith("Tollgate") else "#8b949e" for r in rows]
    ax.barh([r.name for r in rows], [r.rps for r in rows], color=colours)
    for index, row in enumerate(rows):
        ax.text(
            row.rps,
            index,
            f"  {row.rps:,.0f}/s  x{row.ratio:.2f}  p99 {row.p99_ms:.1f} ms",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    ax.set_xlabel("requests per second (wrk, median)")
    ax.set_xlim(0, max(r.rps for r in rows) * 1.45)
    m = results.machine
    ax.set_title(f"Tollgate vs baselines — {m['cores']} cores, {m['cpu']}, {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
