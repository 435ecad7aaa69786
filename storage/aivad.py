"""Import AI-VAD's released object features into the store, exactly (method.md §3.2, Appendix A).

AI-VAD ships ``extracted_features/<ds>/{train,test}/{velocity,pose,deep_features}.npy``: one entry per
frame (videos in sorted folder order, frames in numeric order), each an (n_objects × d) array, and
``data/<ds>/{train,test}_clip_lengths.npy`` with cumulative frame counts. Each feature type becomes its
own stage configuration (pose counts per frame are independent of box counts, so the types cannot share
an object table); a frame without objects stays a frame with no rows. Values and dtypes are kept
bit-for-bit (deep features are fp16 in the release). The boxes are not part of the release: the table
records them as NaN with ``BoxSource.IMPORTED``.

Trust: the release stores each feature file as a numpy *object* array, which numpy writes with pickle,
and unpickling runs whatever code the file contains. Such files are therefore refused unless the caller
passes ``allow_pickle=True`` (the CLI's ``--allow-pickle``) for files from a trusted source; plain
numeric arrays load either way.

Memory: numpy object arrays cannot be memory-mapped, so one feature file of one split is loaded at a
time (ShanghaiTech's training deep features are the largest, ~1.5 GB).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mulde_vad.storage.provenance import make_provenance
from mulde_vad.storage.schema import BoxSource, ObjectChunk, ObjectTable
from mulde_vad.storage.shards import ShardWriter, read_shard
from mulde_vad.storage.store import FeatureStore

AIVAD_STAGE = "aivad"
AIVAD_FEATURES = ("velocity", "pose", "deep_features")
_SPLITS = ("train", "test")


def aivad_config(dataset: str, feature: str) -> dict[str, Any]:
    """Stage config of one imported AI-VAD feature type (the store hashes it into the directory name)."""
    return {"source": "aivad", "dataset": dataset, "feature": feature}


@dataclass(frozen=True)
class AivadImport:
    """What an import wrote: per split, the video ids in AI-VAD order; per feature, its stage config."""

    dataset: str
    video_ids: dict[str, list[str]]
    configs: dict[str, dict[str, Any]]
    n_objects: dict[str, dict[str, int]] = field(default_factory=dict)  # feature → split → rows
    skipped: int = 0  # shards already complete


def read_clip_lengths(path: Path) -> np.ndarray:
    """Video end offsets (cumulative frame counts); a leading 0, if present, is dropped."""
    ends = np.asarray(np.load(path), dtype=np.int64).ravel()
    if len(ends) and ends[0] == 0:
        ends = ends[1:]
    if len(ends) == 0 or np.any(np.diff(ends) <= 0) or ends[0] <= 0:
        raise ValueError(f"{path}: expected strictly increasing cumulative frame counts, got {ends[:5]}...")
    return ends


def _frame_rows(entries: Sequence[Any], path: Path) -> tuple[list[np.ndarray], np.dtype, int]:
    """Per-frame (n_i, d) arrays, their common dtype and d, from an object array (or a regular 3-D array)."""
    arrays = [np.asarray(e) for e in entries]
    shaped = [a for a in arrays if a.ndim == 2 and a.size]
    if not shaped:
        raise ValueError(f"{path}: no frame holds a 2-D (n_objects, d) array; is this an AI-VAD feature file?")
    dim = shaped[0].shape[1]
    dtype = np.result_type(*{a.dtype for a in shaped})
    rows = []
    for i, array in enumerate(arrays):
        if array.size == 0:
            rows.append(np.zeros((0, dim), dtype))
        elif (array.ndim == 2 and array.shape[1] == dim) or (array.ndim == 1 and dim == 1):
            rows.append(array.reshape(-1, dim))
        else:
            raise ValueError(f"{path}: frame {i} has shape {array.shape}, other frames have d={dim}")
    return rows, dtype, dim


def import_aivad(
    features_dir: str | Path,
    clip_lengths_dir: str | Path,
    store: FeatureStore,
    *,
    dataset: str,
    features: Sequence[str] = AIVAD_FEATURES,
    video_ids: Mapping[str, Sequence[str]] | None = None,
    compression: str | None = None,
    overwrite: bool = False,
    allow_pickle: bool = False,
) -> AivadImport:
    """Write one object shard per (feature type, video) for both splits; return the ids and configs used.

    features_dir: ``extracted_features/<ds>`` (holding ``train/`` and ``test/``).
    clip_lengths_dir: ``data/<ds>`` (holding ``train_clip_lengths.npy`` and ``test_clip_lengths.npy``).
    video_ids: per split, the ids of the videos in AI-VAD's (sorted-folder) order, e.g. from a dataset
        adapter, so imported shards line up with that adapter's labels. Default ``train_01``, ``test_01``, ...
        (what the Ped2/Avenue adapters produce). Ids must be unique across splits.
    Complete shards are skipped unless ``overwrite``; a killed import therefore resumes where it stopped.
    allow_pickle: load object arrays (pickled; AI-VAD's format), which can run code: trusted files only.
    """
    features_dir, clip_lengths_dir = Path(features_dir), Path(clip_lengths_dir)
    ends = {split: read_clip_lengths(clip_lengths_dir / f"{split}_clip_lengths.npy") for split in _SPLITS}
    ids = {split: _video_ids(split, len(ends[split]), video_ids) for split in _SPLITS}
    if set(ids["train"]) & set(ids["test"]):
        raise ValueError(
            f"video ids must be unique across splits; shared: {sorted(set(ids['train']) & set(ids['test']))[:5]}"
        )
    configs = {name: aivad_config(dataset, name) for name in features}
    counts: dict[str, dict[str, int]] = {}
    skipped = 0
    for name in features:
        for split in _SPLITS:
            path = features_dir / split / f"{name}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: AI-VAD feature file missing (download extracted_features/{dataset})")
            rows, dtype, _ = _frame_rows(load_feature_file(path, allow_pickle=allow_pickle), path)
            if len(rows) != ends[split][-1]:
                raise ValueError(
                    f"{path}: {len(rows)} frames, but {split}_clip_lengths.npy sums to {ends[split][-1]} frames"
                )
            starts = np.concatenate(([0], ends[split][:-1]))
            for video, start, end in zip(ids[split], starts, ends[split], strict=True):
                shard = store.shard_path(AIVAD_STAGE, configs[name], video)
                if not overwrite and store.is_complete(shard):
                    skipped += 1
                    continue
                _write_video(shard, rows[start:end], dtype, configs[name], path, int(start), compression)
            counts.setdefault(name, {})[split] = sum(len(r) for r in rows)
            del rows
    return AivadImport(dataset, ids, configs, counts, skipped)


def load_feature_file(path: Path, *, allow_pickle: bool) -> np.ndarray:
    """An AI-VAD feature file; a pickled (object) array only with ``allow_pickle``, since unpickling runs code."""
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except ValueError as error:
        if allow_pickle or "allow_pickle" not in str(error):
            raise
        raise ValueError(
            f"{path}: holds a pickled object array, and loading it can run arbitrary code. AI-VAD's released "
            "features use this format: if the file comes from a source you trust, pass --allow-pickle "
            "(import_aivad(..., allow_pickle=True))"
        ) from error


def _video_ids(split: str, n_videos: int, given: Mapping[str, Sequence[str]] | None) -> list[str]:
    if given is None:
        return [f"{split}_{i:02d}" for i in range(1, n_videos + 1)]
    ids = list(given[split])
    if len(ids) != n_videos:
        raise ValueError(f"{split}: {len(ids)} video ids given, but {split}_clip_lengths.npy has {n_videos} videos")
    return ids


def _write_video(
    shard: Path,
    frames: list[np.ndarray],
    dtype: np.dtype,
    config: Mapping[str, Any],
    source: Path,
    first_frame: int,
    compression: str | None,
) -> None:
    per_frame = np.array([len(f) for f in frames], dtype=np.int64)
    n = int(per_frame.sum())
    table = ObjectTable(
        frame_index=np.repeat(np.arange(len(frames), dtype=np.int64), per_frame),
        boxes=np.full((n, 4), np.nan, np.float32),
        confidence=np.full(n, np.nan, np.float32),
        class_id=np.full(n, -1, np.int32),
        source=np.full(n, BoxSource.IMPORTED, np.uint8),
    )
    values = np.concatenate(frames).astype(dtype, copy=False)
    provenance = make_provenance(video=None, config=config)
    provenance["aivad"] = {"file": str(source.resolve()), "first_frame": first_frame}
    with ShardWriter(
        shard, kind="object", provenance=provenance, feature_dtype=dtype.name, compression=compression
    ) as writer:
        writer.append_objects(ObjectChunk(table, {config["feature"]: values}))
        writer.finish(len(frames))


def export_frames(path: str | Path, feature: str) -> list[np.ndarray]:
    """A shard's feature as AI-VAD's per-frame list of (n_objects × d) arrays (inverse of the import)."""
    shard = read_shard(path, features=[feature])
    values = shard.features[feature]
    bounds = np.searchsorted(shard.objects.frame_index, np.arange(shard.n_frames + 1))
    return [values[a:b] for a, b in itertools.pairwise(bounds)]
