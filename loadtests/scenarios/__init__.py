"""One module per kind of Locust user."""
