"""Upgrading a database that holds foundation-era data keeps every plan, subscription
and invoice: plans become the tenant's first catalog, invoices become items."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa

from billing_worker.db.engine import create_engine
from billing_worker.domain.catalog import parse_catalog
from billing_worker.migrate import upgrade_async

FOUNDATION_ROWS = [
    "INSERT INTO tenants (id, name, grace_days, net_terms_days, session_idle_seconds,"
    " fail_open_seconds, degraded_read_only, created_at)"
    " VALUES ('ten_1', 'Acme', 30, 0, 1800, 0, true, '2027-01-01 00:00:00')",
    "INSERT INTO plans (id, tenant_id, code, name, currency, amount_minor, features,"
    " seat_limit, session_policy, created_at) VALUES ('plan_1', 'ten_1', 'pro', 'Pro',"
    " 'USD', 2900, '[\"reports\"]', 5, 'deny_new', '2027-01-01 00:00:00')",
    "INSERT INTO accounts (id, tenant_id, name, kind, currency, net_terms_days,"
    " credit_minor, standing, standing_reason, ent_version, created_at) VALUES ('acc_1',"
    " 'ten_1', 'Ann', 'consumer', 'USD', 0, 0, 'active', 'in_good_standing', 1,"
    " '2027-01-01 00:00:00')",
    "INSERT INTO subscriptions (id, tenant_id, account_id, plan_id, status, cycle_day,"
    " started_at, next_billing_at, created_at) VALUES ('sub_1', 'ten_1', 'acc_1', 'plan_1',"
    " 'active', 15, '2027-01-15 00:00:00', '2027-02-15 00:00:00', '2027-01-15 00:00:00')",
    "INSERT INTO invoices (id, tenant_id, account_id, subscription_id, period_start,"
    " period_end, issued_at, due_at, currency, total_minor, paid_minor, status) VALUES"
    " ('inv_1', 'ten_1', 'acc_1', 'sub_1', '2027-01-15 00:00:00', '2027-02-15 00:00:00',"
    " '2027-01-15 00:00:00', '2027-01-15 00:00:00', 'USD', 2900, 2900, 'paid')",
]


async def test_foundation_data_survives_the_billing_core_migration(
    blank_database_url: str,
) -> None:
    database_url = blank_database_url
    await upgrade_async(database_url, "0003")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for statement in FOUNDATION_ROWS:
                await conn.execute(sa.text(statement))
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            catalog = (await conn.execute(sa.text("SELECT document FROM catalogs"))).scalar_one()
            sub = (
                await conn.execute(
                    sa.text("SELECT plan, billing_start, cycle_day, quantity FROM subscriptions")
                )
            ).one()
            item = (
                await conn.execute(
                    sa.text(
                        "SELECT kind, start_date, end_date, amount_minor, rate FROM invoice_items"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    if isinstance(catalog, str):
        catalog = json.loads(catalog)
    parsed = parse_catalog(catalog)
    assert parsed.plan("pro").entitlement.features == ("reports",)
    assert parsed.plan("pro").entitlement.seat_limit == 5
    assert str(parsed.plan("pro").phases[0].recurring["USD"]) == "29.00"  # type: ignore[index]
    assert (sub.plan, sub.cycle_day, sub.quantity) == ("pro", 15, 1)
    assert str(sub.billing_start)[:10] == "2027-01-15"
    assert item.kind == "recurring"
    assert str(item.start_date)[:10] == date(2027, 1, 15).isoformat()
    assert (item.amount_minor, item.rate) == (2900, "pro/evergreen/default")
