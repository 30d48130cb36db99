"""Entry point for Locust: imports the scenario classes, nothing else."""

from loadtests.scenarios.application import ApplicationUser

__all__ = ["ApplicationUser"]
