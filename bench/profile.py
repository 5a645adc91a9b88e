"""Where the CPU goes: py-spy samples of our worker and of the database server while the
benchmark runs, summarised as the frames that hold the most samples (self and inclusive).

Shares are of the samples py-spy took; it leaves idle threads out by its own judgement, which
counts a thread blocked in a socket read (the database server's `_recv_exactly`) as busy."""

import asyncio
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)")


@dataclass(frozen=True)
class Profile:
    process: str
    samples: int
    own: list[tuple[str, float]]
    """Frames by the share of samples in which they were running themselves."""
    within: list[tuple[str, float]]
    """Frames by the share of samples in which they were on the stack."""

    def lines(self) -> list[str]:
        out = [f"{self.process}: {self.samples} samples; own time"]
        out += [f"  {share:5.1f}%  {frame}" for frame, share in self.own]
        out.append(f"{self.process}: on the stack")
        out += [f"  {share:5.1f}%  {frame}" for frame, share in self.within]
        return out


async def sample(pids: dict[str, int], seconds: float, out: Path) -> list[Profile]:
    """Samples each named process for `seconds`, side by side."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    runs = []
    for name, pid in pids.items():
        raw = out / f"{name}.txt"
        process = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
            "--format", "raw", "--nonblocking", "--output", str(raw),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        runs.append((name, raw, process))
    profiles = []
    for name, raw, process in runs:
        await process.wait()
        if raw.exists():
            profiles.append(summarise(name, raw.read_text()))
    return profiles


def summarise(process: str, collapsed: str, top: int = 12) -> Profile:
    """Reads py-spy's collapsed stacks (`frame;frame;... count` per line)."""
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            within[frame] += samples
    share = 100 / total if total else 0.0
    return Profile(
        process,
        total,
        [(frame, n * share) for frame, n in own.most_common(top)],
        [(frame, n * share) for frame, n in within.most_common(top * 3) if n * share < 95],
    )
