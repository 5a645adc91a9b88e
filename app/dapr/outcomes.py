"""What the app answers Dapr for a delivered message."""

from enum import StrEnum


class DeliveryOutcome(StrEnum):
    SUCCESS = "SUCCESS"  # processed: Dapr forgets the message
    RETRY = "RETRY"  # not processed yet: Dapr redelivers it
    DROP = "DROP"  # never processable: Dapr drops it (or sends it to the dead-letter topic)
