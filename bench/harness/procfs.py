"""What Linux's /proc says about a process and a core: CPU time, memory, core load.

The parsers take the file's text, so ``tests/test_bench_parse.py`` covers them without a process.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

#: clock ticks per second, the unit of /proc's CPU times
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from the text of ``/proc/PID/stat``."""
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat_text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return int(fields[11]) + int(fields[12])


def core_busy(stat_text: str, core: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core from the text of ``/proc/stat``."""
    for line in stat_text.splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return sum(values) - idle, sum(values)
    raise ValueError(f"no cpu{core} line in /proc/stat")


def process_cpu_ticks(pid: int) -> int:
    """CPU time process ``pid`` has used so far, in clock ticks."""
    return cpu_ticks(Path(f"/proc/{pid}/stat").read_text())


def core_busy_now(core: int) -> tuple[int, int]:
    """(busy, total) jiffies of core ``core`` so far."""
    return core_busy(Path("/proc/stat").read_text(), core)


def memory_mb(pid: int) -> dict[str, float]:
    """Resident set size now (``rss_mb``) and at its peak (``hwm_mb``), in MB."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            kb[key] = int(rest.split()[0])
    return {
        "rss_mb": round(kb.get("VmRSS", 0) / 1024, 1),
        "hwm_mb": round(kb.get("VmHWM", 0) / 1024, 1),
    }


def loadavg() -> list[str]:
    """The 1, 5 and 15 minute load averages, as /proc prints them."""
    return Path("/proc/loadavg").read_text().split()[:3]


def cpu_model() -> str:
    """The first CPU's model name ("?" where /proc/cpuinfo does not say)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def ram_gib() -> float:
    """The machine's memory in GiB (0 where /proc/meminfo does not say)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0
