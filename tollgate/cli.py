"""The ``tollgate`` command line.

Flags override the matching ``TOLLGATE_*`` environment variables; every service reads
its settings from the environment once at start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.settings import SettingsError

_FLAG_ENV = {
    "database_url": "TOLLGATE_DATABASE_URL",
    "redis_url": "TOLLGATE_REDIS_URL",
    "api_host": "TOLLGATE_API_HOST",
    "api_port": "TOLLGATE_API_PORT",
    "gateway_host": "TOLLGATE_GATEWAY_HOST",
    "gateway_port": "TOLLGATE_GATEWAY_PORT",
    "processes": "TOLLGATE_GATEWAY_PROCESSES",
}


def _export(args: argparse.Namespace) -> None:
    for attr, variable in _FLAG_ENV.items():
        value = getattr(args, attr, None)
        if value is not None:
            os.environ[variable] = str(value)


def _database_url() -> str:
    from tollgate.storage import database_url

    return database_url()


def _cmd_up(args: argparse.Namespace) -> int:
    from tollgate.up import UpOptions, run_up

    return run_up(
        UpOptions(
            state_dir=Path(args.state_dir),
            database_url=args.database_url or os.environ.get("TOLLGATE_DATABASE_URL"),
            redis_url=args.redis_url or os.environ.get("TOLLGATE_REDIS_URL"),
            api_port=args.api_port or int(os.environ.get("TOLLGATE_API_PORT", "8081")),
            gateway_port=args.gateway_port or int(os.environ.get("TOLLGATE_GATEWAY_PORT", "8080")),
            host=args.host,
            test_mode=not args.no_test_clock,
        )
    )


def _cmd_gateway(args: argparse.Namespace) -> int:
    _export(args)
    from gateway.__main__ import main

    main()
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    _export(args)
    from billing_worker.__main__ import main

    main(api=args.api)
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    _export(args)
    from billing_worker.__main__ import main

    main(jobs=False)
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    _export(args)
    from billing_worker.migrate import upgrade

    upgrade(_database_url(), args.revision)
    print(f"database at {args.revision}")
    return 0


def _cmd_cache_rebuild(args: argparse.Namespace) -> int:
    _export(args)
    from billing_worker.jobs.rebuild import rebuild
    from tollgate.storage import storage

    async def go() -> dict[str, int]:
        async with storage() as store:
            return await rebuild(
                store.sessions,
                store.redis,
                store.clock,
                clean=args.clean,
                progress=lambda what, n: print(f"  {what}: {n}", file=sys.stderr, flush=True),
            )

    counts = asyncio.run(go())
    print("rebuilt: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def _cmd_seed(args: argparse.Namespace) -> int:
    _export(args)
    import time

    from billing_worker.migrate import upgrade
    from tollgate.seed import SeedPlan, seed, write_key_file
    from tollgate.storage import storage

    try:
        plan = SeedPlan(
            users=args.users,
            tenants=args.tenants,
            enterprise_share=args.enterprise_share,
            users_per_enterprise=args.users_per_enterprise,
            grace=args.grace,
            degraded=args.degraded,
            suspended=args.suspended,
            cancelled=args.cancelled,
            cards=args.cards,
            declining_cards=args.declining_cards,
        )
    except ValueError as exc:
        print(f"tollgate seed: {exc}", file=sys.stderr)
        return 2
    upgrade(_database_url())

    async def go() -> list[object]:
        async with storage() as store:
            tenants = await seed(store.sessions, store.redis, plan, store.clock.now())
        write_key_file(Path(args.keys_file), tenants)
        return list(tenants)

    started = time.monotonic()
    tenants = asyncio.run(go())
    elapsed = time.monotonic() - started
    print(
        f"seeded {plan.users} users in {len(tenants)} tenant(s) in {elapsed:.1f}s "
        f"({plan.users / elapsed:,.0f} users/s); keys and sample users: {args.keys_file}"
    )
    return 0


def _cmd_invoice_run(args: argparse.Namespace) -> int:
    _export(args)
    from datetime import date, timedelta

    from shared.settings import Env
    from tollgate.invoice_run import RunOptions, invoice_run
    from tollgate.storage import storage

    try:
        target = date.fromisoformat(args.date) if args.date else None
    except ValueError:
        print(f"tollgate invoice-run: --date {args.date!r} is not YYYY-MM-DD", file=sys.stderr)
        return 2
    options = RunOptions(args.tenant, target, args.batch_size, progress=not args.quiet)

    async def go() -> int:
        async with storage() as store:
            limit = Env(os.environ).integer("MAX_TARGET_DAYS", 730, maximum=36500)
            if target is not None and target > store.clock.now().date() + timedelta(days=limit):
                print(
                    f"tollgate invoice-run: --date {target} is more than {limit} days ahead "
                    "(TOLLGATE_MAX_TARGET_DAYS)",
                    file=sys.stderr,
                )
                return 2
            run, _resumed = await invoice_run(store, options)
        print(f"{run.id}: {run.done:,} accounts, {run.invoices:,} invoices")
        return 0

    return asyncio.run(go())


def _cmd_simulate(args: argparse.Namespace) -> int:
    import functools

    from tollgate.simulate.command import simulate_files
    from tollgate.simulate.scenario import load_scenario, read_inline_scenario

    if args.cpu_seconds or args.memory_mib:
        _limit_self(args.cpu_seconds, args.memory_mib)

    paths = [Path(p) for p in args.files]
    files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        print(f"tollgate simulate: no such scenario file: {', '.join(missing)}", file=sys.stderr)
        return 2
    points: list[dict[str, str]] | None = [] if args.chart_data else None
    if args.inline_only:
        read = read_inline_scenario
    elif args.include_root:
        read = functools.partial(load_scenario, include_root=Path(args.include_root))
    else:
        read = load_scenario
    failed = asyncio.run(
        simulate_files(
            files,
            database_url=args.database_url,
            redis_url=args.redis_url,
            points=points,
            read=read,
        )
    )
    if args.chart_data:  # each account's standing and balance over time, for a chart
        Path(args.chart_data).write_text(json.dumps({"points": points}))
    print(f"{len(files) - failed} of {len(files)} scenario(s) passed")
    return 1 if failed else 0


def _limit_self(cpu_seconds: int | None, memory_mib: int | None) -> None:
    """Hold this process and what it starts (its redis-server) to a CPU time and an address
    space: the console runs a tenant's scenario this way."""
    import resource

    if cpu_seconds:
        # SIGXCPU at the soft limit, SIGKILL five seconds later if that was caught
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if memory_mib:
        limit = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _cmd_bench(args: argparse.Namespace) -> int:
    import shutil

    from tollgate.bench.runner import Profile, run_bench, workspace
    from tollgate.redis_server import find_redis_server

    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if args.profile:
        from tollgate.bench.flames import ProfilerMissing, py_spy

        try:
            py_spy()
        except ProfilerMissing as missing_profiler:
            print(f"tollgate bench {missing_profiler}", file=sys.stderr)
            return 2
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        print(
            f"tollgate bench needs {', '.join(missing)}: sudo apt-get install "
            + " ".join(
                {"wrk": "wrk", "taskset": "util-linux", "nginx": "nginx-light"}[m] for m in missing
            ),
            file=sys.stderr,
        )
        return 2
    find_redis_server()
    profile = Profile.quick() if args.quick else Profile.full()
    default_out = ".tollgate/bench-quick" if args.quick else "loadtests/results"
    args.out = args.out or (f".tollgate/bench-{args.only}" if args.only else default_out)
    postgres_url = args.postgres_url or os.environ.get("TOLLGATE_BENCH_POSTGRES_URL")
    with workspace() as workdir:
        run_bench(
            profile,
            workdir,
            Path(args.out),
            postgres_url,
            only=args.only,
            flame_graphs=args.profile,
        )
    print(f"\nresults: {args.out}/bench.md, bench.json, bench.png")
    print((Path(args.out) / "bench.md").read_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tollgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run everything on embedded defaults, with a demo")
    up.add_argument(
        "--state-dir", default=".tollgate", help="where the SQLite file, logs and demo keys live"
    )
    up.add_argument("--database-url", help="default: SQLite in the state dir")
    up.add_argument("--redis-url", help="default: start a private redis-server")
    up.add_argument("--api-port", type=int, help="management API port (8081)")
    up.add_argument("--gateway-port", type=int, help="gateway port (8080)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--no-test-clock", action="store_true", help="disable the movable test clock")
    up.set_defaults(func=_cmd_up)

    gateway = commands.add_parser("gateway", help="serve the gateway")
    gateway.add_argument("--redis-url")
    gateway.add_argument("--host", dest="gateway_host")
    gateway.add_argument("--port", dest="gateway_port", type=int)
    gateway.add_argument(
        "--processes", type=int, help="gateway processes sharing the port (SO_REUSEPORT)"
    )
    gateway.set_defaults(func=_cmd_gateway)

    worker = commands.add_parser("worker", help="serve the management API and run the billing jobs")
    worker.add_argument("--database-url")
    worker.add_argument("--redis-url")
    worker.add_argument("--host", dest="api_host")
    worker.add_argument("--port", dest="api_port", type=int)
    worker.add_argument(
        "--no-api",
        dest="api",
        action="store_false",
        help="run the jobs only, with no port open (the API runs in `tollgate api`)",
    )
    worker.set_defaults(func=_cmd_worker)

    api = commands.add_parser(
        "api", help="serve the management API alone (the jobs run in `tollgate worker`)"
    )
    api.add_argument("--database-url")
    api.add_argument("--redis-url")
    api.add_argument("--host", dest="api_host")
    api.add_argument("--port", dest="api_port", type=int)
    api.set_defaults(func=_cmd_api)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db_upgrade = db.add_parser("upgrade", help="apply migrations")
    db_upgrade.add_argument("--database-url")
    db_upgrade.add_argument("--revision", default="head")
    db_upgrade.set_defaults(func=_cmd_db_upgrade)

    seed = commands.add_parser("seed", help="create a realistic population for load tests")
    seed.add_argument("--users", type=int, default=100_000)
    seed.add_argument("--tenants", type=int, default=1)
    seed.add_argument(
        "--enterprise-share", type=float, default=0.3, help="share of users in enterprise accounts"
    )
    seed.add_argument("--users-per-enterprise", type=int, default=50)
    seed.add_argument("--grace", type=float, default=0.05, help="share of accounts in grace")
    seed.add_argument("--degraded", type=float, default=0.03)
    seed.add_argument("--suspended", type=float, default=0.05)
    seed.add_argument("--cancelled", type=float, default=0.02)
    seed.add_argument(
        "--cards", type=float, default=0.0, help="share of accounts with a default (sandbox) card"
    )
    seed.add_argument(
        "--declining-cards",
        type=float,
        default=0.0,
        help="share of those cards that decline every charge",
    )
    seed.add_argument("--keys-file", default="loadtests/keys.json")
    seed.add_argument("--database-url")
    seed.add_argument("--redis-url")
    seed.set_defaults(func=_cmd_seed)  # fmt: skip

    run = commands.add_parser(
        "invoice-run", help="invoice every due account now (resumes an unfinished run)"
    )
    run.add_argument("--tenant", help="one tenant's accounts (default: every tenant)")
    run.add_argument("--date", help="bill up to YYYY-MM-DD (default: each account's own today)")
    run.add_argument("--batch-size", type=int, default=200, help="accounts per transaction")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--database-url")
    run.add_argument("--redis-url")
    run.set_defaults(func=_cmd_invoice_run)

    simulate = commands.add_parser(
        "simulate", help="run timeline scenarios (YAML) against the real stack on the test clock"
    )
    simulate.add_argument("files", nargs="+", help="scenario files, or folders of *.yaml")
    simulate.add_argument(
        "--database-url", help="a migrated database to write to (default: a new SQLite per file)"
    )
    simulate.add_argument(
        "--redis-url", help="a Redis the simulation may flush (default: a private redis-server)"
    )
    simulate.add_argument(
        "--chart-data", metavar="FILE",
        help="write each account's standing and balance as evaluated, as JSON (for a chart)",
    )  # fmt: skip
    includes = simulate.add_mutually_exclusive_group()
    includes.add_argument(
        "--include-root", metavar="DIR",
        help="a catalog file a scenario names may lie anywhere in DIR (default: beside the "
        "scenario)",
    )  # fmt: skip
    includes.add_argument(
        "--inline-only", action="store_true",
        help="a scenario may name no file: every catalog inline (how the console runs one)",
    )  # fmt: skip
    simulate.add_argument(
        "--cpu-seconds", type=int, metavar="N", help="stop after N seconds of CPU time"
    )
    simulate.add_argument(
        "--memory-mib", type=int, metavar="N", help="refuse to grow past N MiB of address space"
    )
    simulate.set_defaults(func=_cmd_simulate)

    bench = commands.add_parser("bench", help="measure Tollgate against baselines (wrk)")
    bench.add_argument("--quick", action="store_true", help="short runs, small data (~2 min)")
    bench.add_argument(
        "--postgres-url",
        help="a PostgreSQL database the benchmark may wipe (also TOLLGATE_BENCH_POSTGRES_URL); "
        "it is created if missing",
    )
    bench.add_argument(
        "--only",
        choices=("gateway", "billing", "workers"),
        help="measure one part: the gateway's rows and propagation, invoice runs, or a fleet "
        "of 1, 2 and 4 workers renewing a month on PostgreSQL",
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="also take a py-spy flame graph of the gateway under each Tollgate row's load "
        "(one extra run each, outside the figures) and of each invoice run, into OUT/profiles",
    )
    bench.add_argument(
        "--out",
        help="where the results go (default: loadtests/results for a full run, "
        ".tollgate/bench-quick for --quick and .tollgate/bench-<part> for --only, so neither "
        "replaces the committed full run)",
    )
    bench.set_defaults(func=_cmd_bench)

    cache = commands.add_parser("cache", help="the Redis entitlement view").add_subparsers(
        dest="cache_command", required=True, metavar="ACTION"
    )
    cache_rebuild = cache.add_parser("rebuild", help="repopulate Redis from SQL")
    cache_rebuild.add_argument("--database-url")
    cache_rebuild.add_argument("--redis-url")
    cache_rebuild.add_argument("--clean", action="store_true", help="delete Tollgate's keys first")
    cache_rebuild.set_defaults(func=_cmd_cache_rebuild)

    secrets_key = commands.add_parser(
        "secrets-key", help="print a new key for TOLLGATE_SECRETS_KEY (seals webhook secrets)"
    )
    secrets_key.set_defaults(func=_cmd_secrets_key)
    return parser


def _cmd_secrets_key(_args: argparse.Namespace) -> int:
    from billing_worker.db.sealed import new_key

    print(new_key())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"tollgate: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
