"""The built-in workers; importing this package registers them in `app.workers.registry`."""

from app.workers.builtin import domain_events, heartbeat

__all__ = ["domain_events", "heartbeat"]
