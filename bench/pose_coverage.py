"""How many detector persons got a BlazePose pose in the ``vtest-pose`` benchmark features, per split.

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python bench/pose_coverage.py --cache DIR

Reads the shards ``bench/quality.py --datasets vtest-pose --cache DIR`` wrote (it extracts nothing): a
person row without a pose is one whose pose-presence score fell below the threshold; every other object
(frame-difference boxes, the whole-frame fallback) has no pose by construction and is counted apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from real_assets import vtest_config
from vtest_anomalies import add_location_arguments, bench_folder

from mulde_vad.datasets.folder import FolderDataset
from mulde_vad.features.detection import PERSON
from mulde_vad.storage import FeatureStore, read_shard
from mulde_vad.storage.schema import BoxSource
from mulde_vad.tasks.extract import STAGE, extract_key


def coverage(assets: Path, cache: Path) -> dict[str, dict[str, int]]:
    """Per split: detector person rows, those with a pose, and all other rows (none of which has one)."""
    config = vtest_config(assets, "yolo_blazepose", stride=1, device="cpu")
    store = FeatureStore(cache / "store")
    dataset = FolderDataset(bench_folder(cache), name="vtest-pose")
    out = {}
    for split in ("train", "test"):
        counts = {"persons": 0, "posed": 0, "others": 0, "others_posed": 0}
        for record in dataset.videos(split):
            path = store.shard_path(STAGE, extract_key(config), record.video_id)
            if not store.is_complete(path):
                raise SystemExit(f"{path}: not extracted; run bench/quality.py --datasets vtest-pose --cache {cache}")
            shard = read_shard(path)
            persons = (shard.objects.source == BoxSource.DETECTOR) & (shard.objects.class_id == PERSON)
            posed = np.isfinite(shard.features["pose"]).all(axis=1)
            counts["persons"] += int(persons.sum())
            counts["posed"] += int((posed & persons).sum())
            counts["others"] += int((~persons).sum())
            counts["others_posed"] += int((posed & ~persons).sum())
        out[split] = counts
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_location_arguments(parser)
    args = parser.parse_args()
    for split, c in coverage(args.assets, args.cache).items():
        print(
            f"{split}: {c['posed']} of {c['persons']} detector person rows have a pose "
            f"({c['posed'] / max(c['persons'], 1):.1%}); {c['others']} other rows, {c['others_posed']} with a pose"
        )


if __name__ == "__main__":
    main()
