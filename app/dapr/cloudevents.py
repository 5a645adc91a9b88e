"""The CloudEvent envelope Dapr wraps every pub/sub message in."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1)
    source: str = ""
    type: str = ""
    specversion: str = "1.0"
    datacontenttype: str | None = None
    data: Any = None
    topic: str | None = None
    pubsubname: str | None = None
    traceparent: str | None = None
