"""Who acts: the name given at login (or `api` for a bearer-token call), the role, and the
client address, as the audit log records them."""

from dataclasses import dataclass
from typing import Literal

Role = Literal["operator", "viewer"]


@dataclass(frozen=True)
class Actor:
    who: str
    role: Role
    client: str | None = None


API_CALLER = Actor(who="api", role="operator")
