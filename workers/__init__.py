"""RQ jobs: outbox relay, notifications, reservation expiry."""
