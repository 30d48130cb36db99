"""What customers buy and pay: the catalog, subscriptions and their changes, invoices (runs,
adjustments, listings), payments, refunds, payment methods and provider webhooks."""
