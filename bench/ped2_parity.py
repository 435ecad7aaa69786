"""Ped2 parity: does a faster extraction keep the real UCSD Ped2 frame AUC? Before vs after, per feature type.

    MULDE_VAD_ASSETS=DEST/assets .venv/bin/python bench/ped2_parity.py --before-cache /work/qcache \\
        --after-cache /tmp/ped2-after [--set FIELD=VALUE] [--reencode-backbone 112] [--train-stride 4]

Both sides extract the ``ped2_cpu`` preset (YOLOv8n with AI-VAD's Ped2 settings, DIS flow → velocity, the
ImageNet MobileNetV2 bottleneck, geometry, colour/gradient histograms) into their own feature store
(``--*-cache``/store, reused when complete; the before store is bench/quality.py's cache when it was filled
by the code before the change), the after side with ``--set`` overrides. Each side is scored the same
way: per feature type a 1-NN (leave-one-video-out calibration) and a 5-component GMM fitted on every
``--train-stride``-th training row of the (``--train-videos`` first) training videos, the same on both
sides, then bench/quality.py's frame AUC:
object score → frame max → calibration → Gaussian smoothing → micro and macro AUC over the 12 test
videos, and the fused sum over types. Prints the after side's extraction time too (4,560 frames).

``--reencode-backbone SIZE`` checks another encoder input size without a new extraction: the after store's
backbone rows are computed again at SIZE on the same boxes (detection, flow and the other features do not
depend on it) into a store keyed by that config, and compared with the after store itself.

A change passes when no AUC moves by more than ``--tolerance`` points (0.3).
"""

from __future__ import annotations

import mulde_vad  # noqa: F401  # before torch: idle OpenMP threads then sleep, as in the CLI

# isort: split
import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # bench/quality.py and its siblings import each other by name

from quality import VideoFeatures, baselines, fit_all, ped2_preset, score_types, video_auc, video_features

from mulde_vad.datasets.base import VideoRecord
from mulde_vad.datasets.ucsd import UCSDPed
from mulde_vad.features.batch import ObjectBatch
from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.decode import open_video
from mulde_vad.features.extractors import build_extractor
from mulde_vad.storage import FeatureStore, ShardWriter, make_provenance, read_shard
from mulde_vad.storage.provenance import content_digest
from mulde_vad.storage.schema import ObjectChunk, ObjectTable
from mulde_vad.tasks.extract import STAGE as EXTRACT_STAGE
from mulde_vad.tasks.extract import extract_key

SCORERS = ("1-NN", "GMM")


class FirstTraining:
    """A dataset with only its first ``n`` training videos (every test video): a cheaper check, the same on
    both sides."""

    def __init__(self, dataset: UCSDPed, n: int | None) -> None:
        self.dataset, self.n, self.name = dataset, n, dataset.name

    def videos(self, split: str) -> list[VideoRecord]:
        records = self.dataset.videos(split)
        return records[: self.n] if split == "train" else records


def missing_shards(dataset: FirstTraining, config: ExtractionConfig, cache: Path) -> list[VideoRecord]:
    """The videos whose complete shard of ``config`` is not in ``cache``/store."""
    store, key = FeatureStore(cache / "store"), extract_key(config)
    records = dataset.videos("train") + dataset.videos("test")
    return [r for r in records if not store.is_complete(store.shard_path(EXTRACT_STAGE, key, r.video_id))]


def reencode_backbone(dataset: FirstTraining, source: ExtractionConfig, target: ExtractionConfig, cache: Path) -> None:
    """Write ``target``'s shards (``source`` with another encoder input size) into ``cache`` from ``source``'s:
    the boxes, flow and other features do not depend on the encoder's input size, so only the backbone
    rows are computed again, on the same boxes, by the same crops and encoder at the new size."""
    store, encoder = FeatureStore(cache / "store"), build_extractor("backbone", target)
    source_key, target_key = extract_key(source), extract_key(target)
    for record in missing_shards(dataset, target, cache):
        shard = read_shard(store.shard_path(EXTRACT_STAGE, source_key, record.video_id))
        table, rows = shard.objects, []
        for batch in open_video(record.source).iter_batches(source.batch_size):
            lo, hi = np.searchsorted(table.frame_index, [batch.indices[0], batch.indices[-1] + 1])
            objects = ObjectTable(*(getattr(table, f)[lo:hi] for f in ObjectTable.__dataclass_fields__))
            index = np.searchsorted(batch.indices, objects.frame_index)
            rows.append(encoder(ObjectBatch(batch.frames, objects, index, torch.device(target.device))))
        features = {**shard.features, "backbone": np.concatenate(rows)}
        path = store.shard_path(EXTRACT_STAGE, target_key, record.video_id)
        provenance = make_provenance(video=record.source, config=target_key)
        with ShardWriter(path, kind="object", provenance=provenance, inputs=content_digest(record.source)) as writer:
            writer.append_objects(ObjectChunk(table, features))
            writer.finish(shard.n_frames)


def subsample(types: dict[str, VideoFeatures], stride: int) -> dict[str, VideoFeatures]:
    """Every ``stride``-th training row of each type (test rows untouched): the scorers' cost, not the check's."""
    return {n: replace(t, train=t.train[::stride], groups=t.groups[::stride]) for n, t in types.items()}


def aucs(types: dict[str, VideoFeatures], labels: dict, seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(scorer, type or "fused") → (micro, macro) frame AUC."""
    out = {}
    for scorer in SCORERS:
        fitted, _ = fit_all(baselines(seed)[scorer], types, None)
        for name, auc in video_auc(score_types(fitted, types), types, labels).items():
            out[scorer, name] = (auc.micro, auc.macro)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=Path, default=os.environ.get("MULDE_VAD_ASSETS"))
    parser.add_argument("--ped2", type=Path, default=Path(os.environ.get("MULDE_VAD_PED2", "/work/shared/ped2")))
    parser.add_argument("--before-cache", type=Path, required=True)
    parser.add_argument("--after-cache", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="after-side field")
    parser.add_argument("--train-stride", type=int, default=4)
    parser.add_argument("--train-videos", type=int, help="only the first N of the 16 training videos")
    parser.add_argument(
        "--reencode-backbone",
        type=int,
        metavar="SIZE",
        help="compare the after store with its backbone rows re-encoded at this input size (no new extraction)",
    )
    parser.add_argument("--tolerance", type=float, default=0.3, help="AUC points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.assets is None:
        parser.error("pass --assets DEST/assets or set MULDE_VAD_ASSETS")
    dataset = FirstTraining(UCSDPed(args.ped2), args.train_videos)
    before = ped2_preset("ped2-cpu", args)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    after = replace(before, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    sides = [("after", after, args.after_cache), ("before", before, args.before_cache)]
    if args.reencode_backbone:
        video_features(dataset, after, args.after_cache, "ped2-cpu")  # extracted first when missing
        target = replace(after, backbone_size=args.reencode_backbone)
        reencode_backbone(dataset, after, target, args.after_cache)
        sides = [("after", target, args.after_cache), ("before", after, args.after_cache)]
        overrides["backbone_size"] = args.reencode_backbone
    results = {}
    for side, config, cache in sides:
        missing = [r.video_id for r in missing_shards(dataset, config, cache)]
        if side == "before" and missing:  # never extracted here: the before side is what the old code wrote
            parser.error(f"the before store {cache} lacks {len(missing)} videos ({', '.join(missing)})")
        started = time.perf_counter()
        types, labels = video_features(dataset, config, cache, "ped2-cpu")
        print(f"{side}: features of {cache} ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        results[side] = aucs(subsample(types, args.train_stride), labels, args.seed)
    print(f"Ped2 frame AUC (micro / macro), before vs after {overrides or 'the same config'}, seed {args.seed}")
    print("| scorer | type | before | after | change |\n|---|---|---|---|---|")
    worst = 0.0
    for key, (micro, macro) in results["before"].items():
        new_micro, new_macro = results["after"][key]
        worst = max(worst, abs(new_micro - micro), abs(new_macro - macro))
        change = f"{new_micro - micro:+.2f} / {new_macro - macro:+.2f}"
        print(f"| {key[0]} | {key[1]} | {micro:.2f} / {macro:.2f} | {new_micro:.2f} / {new_macro:.2f} | {change} |")
    verdict = "holds" if worst <= args.tolerance else "FAILS"
    print(f"largest change {worst:.2f} points: parity {verdict} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
