"""A SaaS application: logs its users in, checks them as they work, refreshes and logs out."""

from __future__ import annotations

import random

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.config import TenantUsers, load_config
from loadtests.scenarios.checks import expect_decision, expect_status


class ApplicationUser(FastHttpUser):
    """One end user's session, driven by the application's backend with the gateway key."""

    weight = 3
    wait_time = between(0.01, 0.05)
    tenant: TenantUsers
    user: str
    session_id: str | None = None

    def on_start(self) -> None:
        self.tenant = random.choice(load_config().tenants)
        self.headers = {"Authorization": f"Bearer {self.tenant.gateway_key}"}
        self.user = random.choice(self.tenant.allowed())
        self._login()

    def _login(self) -> None:
        with self.client.post(
            "/v1/sessions", json={"user": self.user}, headers=self.headers,
            name="sessions: login", catch_response=True,
        ) as response:  # fmt: skip
            # 403 is a correct answer when an enterprise account's seats are all taken.
            if expect_status(response, 201, 403) and response.status_code == 201:
                self.session_id = response.json()["session_id"]

    @task(10)
    def authorize(self) -> None:
        with self.client.post(
            "/v1/authorize", json={"user": self.user}, headers=self.headers,
            name="authorize: allowed", catch_response=True,
        ) as response:  # fmt: skip
            expect_decision(response, True, ("in_good_standing", "payment_due"))

    @task(2)
    def authorize_denied(self) -> None:
        denied = self.tenant.denied()
        if not denied:
            return
        with self.client.post(
            "/v1/authorize", json={"user": random.choice(denied)}, headers=self.headers,
            name="authorize: suspended or cancelled", catch_response=True,
        ) as response:  # fmt: skip
            expect_decision(response, False, ("payment_overdue", "no_active_subscription"))

    @task(1)
    def authorize_unknown(self) -> None:
        with self.client.post(
            "/v1/authorize", json={"user": f"nobody-{random.randrange(10**9)}@nowhere.test"},
            headers=self.headers, name="authorize: unknown", catch_response=True,
        ) as response:  # fmt: skip
            expect_decision(response, False, ("unknown_user",))

    @task(2)
    def refresh(self) -> None:
        if self.session_id is None:
            return self._login()
        with self.client.post(
            f"/v1/sessions/{self.session_id}/refresh", headers=self.headers,
            name="sessions: refresh", catch_response=True,
        ) as response:  # fmt: skip
            # 404: the session was evicted by a newer login of the same account.
            if expect_status(response, 200, 404) and response.status_code == 404:
                self.session_id = None
        return None

    @task(1)
    def logout_and_login(self) -> None:
        if self.session_id is not None:
            with self.client.delete(
                f"/v1/sessions/{self.session_id}", headers=self.headers,
                name="sessions: logout", catch_response=True,
            ) as response:  # fmt: skip
                expect_status(response, 204, 404)
            self.session_id = None
        self._login()
