"""The built-in workers; importing this package registers them in `app.workers.registry`."""

from app.workers.builtin import (
    customer_summaries,
    data_sync,
    domain_events,
    heartbeat,
    history_cleanup,
    message_queue,
    scheduled_report,
)

__all__ = [
    "customer_summaries",
    "data_sync",
    "domain_events",
    "heartbeat",
    "history_cleanup",
    "message_queue",
    "scheduled_report",
]
