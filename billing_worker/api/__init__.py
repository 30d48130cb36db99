"""The management API: tenants, accounts, users, subscriptions, payments, the test clock."""
