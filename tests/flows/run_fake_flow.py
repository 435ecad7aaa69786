"""Run one flow with the fake extractor in a fresh process: ``python run_fake_flow.py FLOW OVERRIDES_JSON SLEEP_S``.

Used by tests that kill the process mid-extraction or talk to a real Prefect server.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import fake_extraction

from mulde_vad.flows import pipeline
from mulde_vad.flows.config import load_config
from mulde_vad.tasks import extract as extract_tasks


def main(flow: str, overrides: str, sleep_s: str) -> None:
    fake_extraction.SLEEP_S = float(sleep_s)
    extract_tasks.extract_video = fake_extraction.fake_extract_video
    extract_tasks.extraction_config = pipeline.extraction_config = fake_extraction.fake_config
    extract_tasks.weight_files = fake_extraction.fake_weight_files
    getattr(pipeline, f"{flow}_flow")(load_config("demo", json.loads(overrides)))


if __name__ == "__main__":
    main(*sys.argv[1:])
