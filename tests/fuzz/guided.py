"""Coverage-guided mode (`python -m tests.fuzz.run --atheris`): libFuzzer through atheris, with the
structure-aware mutator of mutate.py as its custom mutator and the fixtures as the seed corpus.

atheris is not a project dependency: install it where you like, e.g.
`pip install --target /tmp/atheris-site atheris` and run with PYTHONPATH=/tmp/atheris-site.
Findings are recorded (and minimized, saved) by the same Campaign as the plain loop; a finding does
not stop libFuzzer, which keeps the inputs that reach new code in its own corpus directory.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz import FIXTURES
from tests.fuzz.boxtree import parse_file
from tests.fuzz.mutate import mutate
from tests.fuzz.run import Campaign, Options, print_summary, summary

MAX_LENGTH = 4 * 1024 * 1024


def run_atheris(options: Options) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install --target /tmp/atheris-site atheris, then run with "
              "PYTHONPATH=/tmp/atheris-site", file=sys.stderr)
        return 2
    import vodorigin.packagers.hls  # noqa: F401 (loaded before instrument_all)

    campaign = Campaign(options)
    seconds = options.seconds if options.seconds is not None else 600.0
    start = time.monotonic()

    def one_input(data: bytes) -> None:
        if time.monotonic() - start > seconds:
            finish(campaign, start, corpus)
        campaign.check(data, "atheris.mp4", "atheris (coverage-guided); mutation not recorded")

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.1:
            return atheris.Mutate(data, max_size)
        return mutate(parse_file(data), rng).data[:max_size]

    corpus = Path(tempfile.mkdtemp(prefix="vodorigin-atheris-"))
    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in (".mp4", ".m4a"):
            (corpus / path.name).write_bytes(path.read_bytes())
    atheris.instrument_all()
    arguments = [sys.argv[0], str(corpus), f"-max_len={MAX_LENGTH}", "-rss_limit_mb=0", "-timeout=60",
                 f"-max_total_time={int(seconds) + 120}", f"-seed={options.seed or 1}"]
    atheris.Setup(arguments, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
    return 0


def finish(campaign: Campaign, start: float, corpus: Path) -> None:
    """libFuzzer leaves through C exit(): print the summary, drop its corpus and leave first."""
    campaign.elapsed = time.monotonic() - start
    shutil.rmtree(corpus, ignore_errors=True)
    result = summary(campaign)
    print_summary(result)
    print(json.dumps({k: v for k, v in result.items() if k != "findings"}), flush=True)
    os._exit(0)
