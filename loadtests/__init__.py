"""Locust scenarios for operators (run them with ``locust -f loadtests/locustfile.py``)."""
