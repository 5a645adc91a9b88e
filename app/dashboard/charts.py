"""Charts drawn on the server as inline SVG: no JavaScript, no chart library to ship."""

from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 720, 160, 24


@dataclass(frozen=True)
class Bucket:
    start: datetime
    succeeded: int
    failed: int  # failed attempts that will retry, dead and cancelled runs

    @property
    def total(self) -> int:
        return self.succeeded + self.failed

    @property
    def failure_rate(self) -> float:
        return self.failed / self.total if self.total else 0.0


def throughput_chart(buckets: list[Bucket], *, label: str) -> Markup:
    """Bars of finished attempts (succeeded below, failed above) and a line of the failure
    rate (0 to 100 % on the right axis)."""
    if not buckets:
        return Markup("<p class='muted'>No runs in this period.</p>")
    peak = max(*(b.total for b in buckets), 1)
    step = (WIDTH - 2 * PAD) / len(buckets)
    usable = HEIGHT - 2 * PAD
    parts = [
        f"<svg class='chart' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='{escape(label)}'><title>{escape(label)}</title>",
        f"<text x='{PAD}' y='14' class='axis'>{peak} per bucket</text>",
        f"<text x='{WIDTH - PAD}' y='14' class='axis' text-anchor='end'>failure rate</text>",
    ]
    points = []
    for i, bucket in enumerate(buckets):
        x = PAD + i * step
        ok_h = usable * bucket.succeeded / peak
        bad_h = usable * bucket.failed / peak
        base = HEIGHT - PAD
        tip = f"{bucket.start:%H:%M} UTC: {bucket.succeeded} succeeded, {bucket.failed} failed"
        parts.append(
            f"<g><title>{escape(tip)}</title>"
            f"<rect class='ok' x='{x:.1f}' y='{base - ok_h:.1f}' width='{max(step - 1, 1):.1f}' "
            f"height='{ok_h:.1f}'/>"
            f"<rect class='bad' x='{x:.1f}' y='{base - ok_h - bad_h:.1f}' "
            f"width='{max(step - 1, 1):.1f}' height='{bad_h:.1f}'/></g>"
        )
        points.append(f"{x + step / 2:.1f},{base - usable * bucket.failure_rate:.1f}")
    parts.append(f"<polyline class='rate' points='{' '.join(points)}'/>")
    first, last = buckets[0].start, buckets[-1].start
    parts.append(f"<text x='{PAD}' y='{HEIGHT - 6}' class='axis'>{first:%H:%M}</text>")
    parts.append(
        f"<text x='{WIDTH - PAD}' y='{HEIGHT - 6}' class='axis' text-anchor='end'>"
        f"{last:%H:%M} UTC</text></svg>"
    )
    return Markup("".join(parts))
