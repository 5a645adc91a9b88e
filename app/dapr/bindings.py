"""What a Dapr input binding's request says besides its body: for the cron binding, when daprd
fired it (`readTimeUTC`, Go's `Time.String()`: `2026-12-07 06:33:25.000123456 +0000 UTC`).

A firing is named by that moment, not by when the app got to the request: on a machine busy
for a second or two, firings reach the app late, and a tick taken from the app's clock would
name a later tick that another firing has, leaving its own without a run.
"""

import re
from collections.abc import Mapping
from datetime import datetime

FIRED_AT_HEADER = "readTimeUTC"
_GO_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d{1,9}))? ([+-]\d{4}) \S+")


def fired_at(headers: Mapping[str, str]) -> datetime | None:
    """The firing's moment as the binding wrote it; None when it did not, or unreadably."""
    written = headers.get(FIRED_AT_HEADER)
    match = _GO_TIME.fullmatch(written.strip()) if written else None
    if match is None:
        return None
    seconds, fraction, offset = match.groups()
    microseconds = (fraction or "")[:6].ljust(6, "0")  # Go writes nanoseconds
    try:
        return datetime.strptime(f"{seconds}.{microseconds} {offset}", "%Y-%m-%d %H:%M:%S.%f %z")
    except ValueError:
        return None
