"""A reverse proxy asking ``/v1/auth`` on every page view of logged-in users."""

from __future__ import annotations

import random

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.config import load_config
from loadtests.scenarios.checks import expect_status


class ProxyUser(FastHttpUser):
    """Page views by a logged-in user, plus the requests a proxy must turn away."""

    weight = 5
    wait_time = between(0.005, 0.02)
    token: str | None = None
    #: The proxy of one tenant's application binds its checks to that tenant.
    bound: dict[str, str] = {}  # noqa: RUF012 -- set per user in on_start

    def on_start(self) -> None:
        tenant = random.choice(load_config().tenants)
        self.bound = {"X-Tollgate-Key": tenant.gateway_key}
        headers = {"Authorization": f"Bearer {tenant.gateway_key}"}
        user = random.choice(tenant.allowed())
        with self.client.post(
            "/v1/sessions", json={"user": user}, headers=headers,
            name="sessions: login (proxy user)", catch_response=True,
        ) as response:  # fmt: skip
            if expect_status(response, 201, 403) and response.status_code == 201:
                self.token = response.json()["token"]

    @task(20)
    def page_view(self) -> None:
        if self.token is None:
            return
        with self.client.get(
            "/v1/auth", headers={"Cookie": f"tollgate_session={self.token}",
                                 "X-Original-Method": "GET", "X-Original-URI": "/app",
                                 **self.bound},
            name="auth: page view", catch_response=True,
        ) as response:  # fmt: skip
            # 401: the session was evicted by a newer login on the same account.
            if expect_status(response, 200, 401) and response.status_code == 401:
                self.token = None

    @task(1)
    def no_session(self) -> None:
        with self.client.get(
            "/v1/auth", headers=self.bound, name="auth: no session", catch_response=True
        ) as response:
            expect_status(response, 401)

    @task(1)
    def forged_session(self) -> None:
        token = f"tgs_ten_0.acc_0.{random.randrange(10**9)}.forged"
        with self.client.get(
            "/v1/auth", headers={"Authorization": f"Bearer {token}", **self.bound},
            name="auth: unknown session", catch_response=True,
        ) as response:  # fmt: skip
            expect_status(response, 401)
