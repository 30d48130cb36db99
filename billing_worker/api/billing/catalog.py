"""The tenant's catalog: upload a version (YAML or JSON), read it, or add a simple plan."""

from __future__ import annotations

import copy
from datetime import date
from typing import Annotated, Any, Literal

import yaml
from aiohttp import web
from msgspec import Meta, Struct, field

from billing_worker.api.http.appkeys import CLOCK, SESSIONS
from billing_worker.api.http.auth import tenant_of
from billing_worker.api.http.bounds import control_characters
from billing_worker.api.http.routes import router
from billing_worker.api.http.routing import Role, decode, read_limited, respond
from billing_worker.api.http.schemas import Amount, Body, Code, Currency, Name
from billing_worker.domain.catalog import Catalog, CatalogError, parse_catalog
from billing_worker.invoicing.catalogs import latest_document, store_catalog
from billing_worker.services.errors import (
    Conflict,
    FieldError,
    InvalidRequest,
    MalformedDocument,
    NotFound,
)
from shared import yaml_documents
from shared.money import Money, MoneyError, is_currency


class PlanCreate(Body):
    code: Code
    name: Name
    currency: Currency
    amount: Amount
    features: list[Code] = field(default_factory=list)
    seat_limit: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    session_policy: Literal["deny_new", "evict_oldest"] = "deny_new"


class PlanOut(Struct, kw_only=True):
    code: str
    name: str
    currency: str
    amount: str
    interval: Literal["month"]
    features: list[str]
    seat_limit: int | None
    session_policy: str


class CatalogOut(Struct, kw_only=True):
    effective_date: date
    currencies: list[str]
    products: list[str]
    plans: list[str]
    price_lists: list[str]
    document: dict[str, Any]


CATALOG_MAX_BYTES = 1024 * 1024
CATALOG_SCHEMA = {
    "type": "object",
    "description": "A catalog document (products, plans, price_lists, rules): docs/catalog.md",
}


def _catalog_out(catalog: Catalog, document: dict[str, Any]) -> CatalogOut:
    return CatalogOut(
        effective_date=catalog.effective_date,
        currencies=list(catalog.currencies),
        products=sorted(catalog.products),
        plans=sorted(catalog.plans),
        price_lists=["default", *sorted(catalog.price_lists)],
        document=document,
    )


def _rejected(exc: CatalogError) -> InvalidRequest:
    errors = [FieldError(p.path, p.message) for p in exc.problems]
    return InvalidRequest(
        f"the catalog is invalid ({len(errors)} problem(s)); the previous one stays in force",
        errors=errors,
    )


def _normalized(document: Any) -> Any:
    """YAML dates and numbers to the strings the JSON column keeps."""
    if isinstance(document, dict):
        return {str(k): _normalized(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_normalized(v) for v in document]
    if isinstance(document, date):
        return document.isoformat()
    return document


@router.route(
    "PUT",
    "/v1/catalog",
    summary="Upload a catalog version (YAML or JSON); an invalid one is rejected whole",
    role=Role.TENANT,
    response=CatalogOut,
    status=201,
    errors=(400, 422),
    raw_body={
        media: {"schema": CATALOG_SCHEMA} for media in ("application/yaml", "application/json")
    },
)
async def put_catalog(request: web.Request) -> web.Response:
    raw = await read_limited(request, CATALOG_MAX_BYTES)
    try:
        # JSON is YAML; floats stay floats so the catalog can refuse them by path.
        document = _normalized(yaml_documents.load(raw.decode("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MalformedDocument(f"body is neither valid YAML nor JSON: {exc}") from exc
    unreadable = control_characters(document, "catalog")
    if unreadable:
        raise InvalidRequest.fields(unreadable[:20])
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            catalog = await store_catalog(
                session, tenant_of(request), document, request.app[CLOCK].now()
            )
        except CatalogError as exc:
            raise _rejected(exc) from exc
    return respond(_catalog_out(catalog, document), 201)


@router.route(
    "GET",
    "/v1/catalog",
    summary="The newest catalog version",
    role=Role.TENANT,
    response=CatalogOut,
    errors=(404,),
)
async def get_catalog(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        document = await latest_document(session, tenant_of(request))
    if document is None:
        raise NotFound("no catalog yet: PUT /v1/catalog, or POST /v1/plans for a simple plan")
    return respond(_catalog_out(parse_catalog(document), document))


def _with_plan(document: dict[str, Any] | None, body: PlanCreate, today: date) -> Any:
    doc: dict[str, Any] = copy.deepcopy(document) if document else {
        "effective_date": today.isoformat(), "currencies": [], "products": {}, "plans": {},
    }  # fmt: skip
    if body.code in doc.get("plans", {}):
        raise Conflict.field("code", f"plan {body.code!r} already exists")
    if body.code in doc.get("products", {}):
        raise Conflict.field("code", f"a product named {body.code!r} already exists")
    if body.currency not in doc["currencies"]:
        doc["currencies"].append(body.currency)
    entitlement: dict[str, Any] = {"features": list(body.features),
                                   "session_policy": body.session_policy}  # fmt: skip
    if body.seat_limit:
        entitlement["seat_limit"] = body.seat_limit
    doc.setdefault("products", {})[body.code] = {"category": "base"}
    doc.setdefault("plans", {})[body.code] = {
        "product": body.code,
        "billing_period": "monthly",
        "entitlement": entitlement,
        "phases": [{"type": "evergreen", "recurring": {body.currency: body.amount}}],
    }
    return doc


@router.route(
    "POST",
    "/v1/plans",
    summary="Add a simple monthly plan to the catalog (a new version of the newest one)",
    role=Role.TENANT,
    request=PlanCreate,
    response=PlanOut,
    status=201,
    errors=(409,),
)
async def create_plan(request: web.Request) -> web.Response:
    body = await decode(request, PlanCreate)
    if not is_currency(body.currency):
        raise InvalidRequest.field("currency", f"{body.currency!r} is not an ISO 4217 currency")
    try:
        price = Money.parse(body.amount, body.currency)
    except MoneyError as exc:
        raise InvalidRequest.field("amount", str(exc)) from exc
    now = request.app[CLOCK].now()
    async with request.app[SESSIONS]() as session, session.begin():
        current = await latest_document(session, tenant_of(request))
        document = _with_plan(current, body, now.date())
        try:
            await store_catalog(session, tenant_of(request), document, now)
        except CatalogError as exc:
            raise _rejected(exc) from exc
    return respond(
        PlanOut(
            code=body.code,
            name=body.name,
            currency=body.currency,
            amount=price.format(),
            interval="month",
            features=list(body.features),
            seat_limit=body.seat_limit,
            session_policy=body.session_policy,
        ),
        201,
    )
