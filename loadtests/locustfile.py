"""Entry point for Locust: imports the scenario classes, nothing else."""

from loadtests.scenarios.application import ApplicationUser
from loadtests.scenarios.proxy import ProxyUser

__all__ = ["ApplicationUser", "ProxyUser"]
