"""Where featurisation (the slowest stage per event) spends its time: a pyinstrument profile.

Usage: python benchmarks/profile.py [N_EVENTS]   (default 200000; needs the `bench` extra)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(n_events: int = 200_000) -> None:
    from pyinstrument import Profiler

    from benchmarks.data import events_file
    from features.featurise import featurise_history
    from pipelines.ingest import Ingestor

    path = str(events_file(n_events))
    profiler = Profiler(interval=0.002)
    profiler.start()
    featurise_history(Ingestor().iter_batches([path]))
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
