"""The worker side: RQ jobs (relay, deliveries, expiry, cart purge, CSV import), the worker
process, the periodic work (also run by the embedded timer without Redis), and their CLI."""
