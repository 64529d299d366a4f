"""Backups stream: packing and unpacking a payload ten times larger takes no more memory.

Each size runs in a fresh process; the figure is the growth of its peak RSS (ru_maxrss)
across pack + unpack, so the payload's creation and the imports do not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_MEASURE = """
import json, os, resource, sys
from pathlib import Path
from piyasa.backup import archive

work, mb = Path(sys.argv[1]), int(sys.argv[2])
payload = work / "payload.db"
with payload.open("wb") as f:  # half random, half repetitive: two compression regimes
    for i in range(mb):
        f.write(os.urandom(1 << 20) if i % 2 else (b"BIST XU100 %d " % i) * 65536)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with (work / "a.pbk").open("wb") as out:
    archive.pack(payload, out, {}, secret_key="k" * 43)
archive.unpack_to(work / "a.pbk", work / "back.db", secret_key="k" * 43)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert (work / "back.db").stat().st_size == payload.stat().st_size
print(json.dumps({"growth_mb": (after - before) / 1024}))
"""


def _growth_mb(tmp_path: Path, mb: int) -> float:
    work = tmp_path / f"m{mb}"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(work), str(mb)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["growth_mb"])


def test_memory_does_not_grow_with_the_payload(tmp_path: Path) -> None:
    small, large = _growth_mb(tmp_path, 32), _growth_mb(tmp_path, 256)
    assert large - small < 24, (small, large)  # 224 MB more payload, < 24 MB more memory
    assert large < 96, (small, large)  # zstd's job buffers bounded (8 MB jobs: ~150 MB)
