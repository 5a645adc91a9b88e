"""The benchmark's chart: items applied per second and CPU per item, ours beside the peers'."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write the file only

import matplotlib.pyplot as plt

from bench.result import Result


def draw(results: list[Result], title: str, path: Path) -> None:
    names = [result.name.replace("aevatar-worker, ", "ours, ") for result in results]
    figure, (rate, cpu) = plt.subplots(1, 2, figsize=(11, 4.2))
    rate.barh(names, [result.events_per_second for result in results], color="#3b6ea8")
    rate.set_xlabel("items applied per second")
    rate.invert_yaxis()
    groups = sorted({group for result in results for group in result.cpu_ms_per_event})
    left = [0.0] * len(results)
    for group in groups:
        widths = [result.cpu_ms_per_event.get(group, 0.0) for result in results]
        cpu.barh(names, widths, left=left, label=group)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    cpu.set_xlabel("CPU ms per item, by process")
    cpu.invert_yaxis()
    cpu.set_yticklabels([])
    cpu.legend(loc="lower right", fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
