"""One HDF5 shard per (stage configuration, video), written atomically and validated on read.

Layout (``SCHEMA_VERSION`` 2)::

    attrs: schema_version, kind ("object" | "frame"), complete, n_frames, config_hash, inputs, provenance (JSON)
    /objects/{frame_index, boxes, confidence, class_id, source}   kind="object" only, rows sorted by frame
    /features/<name>                                               (rows, d); object rows align with /objects

A writer fills a temporary file in the destination directory (so the final ``os.replace`` is atomic
on one filesystem), fsyncs it and renames it only after ``finish``. A process killed at any point
therefore leaves either the previous state or a ``.tmp`` file that never reads as a shard. Every
failure while writing (open, append, flush, close, fsync, rename; ENOSPC included) removes the
temporary file before the error propagates.

Every dataset carries HDF5's Fletcher-32 checksum per chunk, so a flipped byte raises on read instead of
returning a wrong value; ``inputs`` is the content digest of what the shard was computed from (a
video, or upstream shards), so a changed input makes the shard stale rather than silently reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import h5py
import numpy as np

from mulde_vad.storage.provenance import config_hash
from mulde_vad.storage.schema import SCHEMA_VERSION, FrameChunk, ObjectChunk, ObjectTable

Kind = Literal["object", "frame"]
TEMP_SUFFIX = ".tmp"
_OBJECT_DTYPES = {
    "frame_index": np.int64,
    "boxes": np.float32,
    "confidence": np.float32,
    "class_id": np.int32,
    "source": np.uint8,
}
_FEATURE_DTYPES = ("float32", "float16", "float64")
_COMPRESSIONS = (None, "gzip", "lzf")
_CHUNK_BYTES = 256 << 10


class ShardError(ValueError):
    """A shard is missing, truncated, from another schema or config, or internally inconsistent."""


@dataclass(frozen=True)
class Shard:
    """A validated shard loaded into memory (one video: bounded by the video's size)."""

    path: Path
    kind: Kind
    n_frames: int
    objects: ObjectTable | None
    features: dict[str, np.ndarray]
    provenance: dict[str, Any]
    config_hash: str


def host_tag() -> str:
    """This machine's name without dots, as embedded in temporary file names."""
    return socket.gethostname().replace(".", "-")


def temp_path_for(path: Path) -> Path:
    """A unique hidden sibling of ``path``; host and pid in the name let ``clean_partial`` judge liveness."""
    return path.with_name(f".{path.name}.{host_tag()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ShardWriter:
    """Context manager that writes one shard; nothing appears at ``path`` unless the block succeeds.

    Object features are appended in frame order (``frame_index`` non-decreasing across chunks), frame
    features as contiguous runs starting at frame 0. ``finish(n_frames)`` must be called inside the block.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        kind: Kind,
        provenance: Mapping[str, Any],
        feature_dtype: str = "float32",
        compression: str | None = None,
        inputs: str = "",
    ) -> None:
        if kind not in ("object", "frame"):
            raise ValueError(f"kind must be 'object' or 'frame', got {kind!r}")
        if feature_dtype not in _FEATURE_DTYPES:
            raise ValueError(f"feature_dtype must be one of {_FEATURE_DTYPES}, got {feature_dtype!r}")
        if compression not in _COMPRESSIONS:
            raise ValueError(f"compression must be one of {_COMPRESSIONS}, got {compression!r}")
        if "config" not in provenance:
            raise ValueError("provenance has no 'config'; build it with storage.make_provenance(...)")
        self.path = Path(path)
        self.kind = kind
        self.provenance = dict(provenance)
        self.feature_dtype = np.dtype(feature_dtype)
        self.compression = compression
        self.inputs = inputs
        self._file: h5py.File | None = None
        self._temp: Path | None = None
        self._rows = 0  # frames written (frame kind) or objects written (object kind)
        self._last_frame = -1
        self._feature_names: frozenset[str] | None = None
        self._finished = False

    # ------------------------------------------------------------------ context
    def __enter__(self) -> ShardWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = temp_path_for(self.path)
        try:
            # No chunk cache: every append reaches the disk inside the call, so a full disk raises OSError
            # there. With a cache the write fails later, while h5py frees a handle, where the error is only
            # printed and HDF5 can crash the process on exit.
            self._file = h5py.File(self._temp, "w-", rdcc_nbytes=0)
            attrs = self._file.attrs
            attrs["schema_version"] = SCHEMA_VERSION
            attrs["kind"] = self.kind
            attrs["complete"] = False
            attrs["n_frames"] = -1
            attrs["config_hash"] = config_hash(self.provenance["config"])
            attrs["inputs"] = self.inputs
            attrs["provenance"] = json.dumps(self.provenance, sort_keys=True, default=str)
            self._file.create_group("features")
            if self.kind == "object":
                objects = self._file.create_group("objects")
                for name, dtype in _OBJECT_DTYPES.items():
                    self._create(objects, name, (4,) if name == "boxes" else (), np.dtype(dtype))
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None or not self._finished:
            self._discard()
            if exc_type is None:
                raise ShardError(f"{self.path}: the writer block ended without finish(n_frames); nothing was written")
            return
        try:
            self._close()
            fd = os.open(self._temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._temp, self.path)
        except BaseException:
            self._discard()
            raise
        _fsync_dir(self.path.parent)

    def _close(self) -> None:
        """Close the HDF5 file; when the first close fails (no space to flush), a second one releases what is
        left open, so no handle survives to crash HDF5 at exit. The first error is the one raised."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.close()
        except (OSError, RuntimeError):
            with contextlib.suppress(OSError, RuntimeError):
                file.close()
            raise

    def _discard(self) -> None:
        """Close (ignoring a second disk error: the first is the one reported) and delete the temp file."""
        try:
            with contextlib.suppress(OSError, RuntimeError):
                self._close()
        finally:
            if self._temp is not None:
                self._temp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ appends
    def _create(self, group: h5py.Group, name: str, row_shape: tuple[int, ...], dtype: np.dtype) -> h5py.Dataset:
        row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize)
        chunk_rows = max(1, _CHUNK_BYTES // row_bytes)
        return group.create_dataset(
            name,
            shape=(0, *row_shape),
            maxshape=(None, *row_shape),
            dtype=dtype,
            chunks=(chunk_rows, *row_shape),
            compression=self.compression,
            fletcher32=True,
        )

    def _open_file(self) -> h5py.File:
        if self._file is None:
            raise ShardError(f"{self.path}: use ShardWriter as a context manager (`with ShardWriter(...) as w:`)")
        if self._finished:
            raise ShardError(f"{self.path}: finish() was already called; no more rows can be appended")
        return self._file

    def _append_features(self, features: Mapping[str, np.ndarray], n_rows: int) -> None:
        names = frozenset(features)
        if n_rows and self._feature_names is None:
            self._feature_names = names
        if n_rows and names != self._feature_names:
            before = sorted(self._feature_names or ())
            raise ValueError(f"{self.path}: chunk has features {sorted(names)}, earlier chunks {before}")
        group = self._open_file()["features"]
        for name, values in features.items():
            array = np.asarray(values)
            if array.ndim != 2 or len(array) != n_rows:
                raise ValueError(f"{self.path}: feature {name!r} must have shape ({n_rows}, d), got {array.shape}")
            dataset = group[name] if name in group else self._create(group, name, array.shape[1:], self.feature_dtype)
            if dataset.shape[1:] != array.shape[1:]:
                raise ValueError(
                    f"{self.path}: feature {name!r} has d={array.shape[1]}, earlier chunks {dataset.shape[1]}"
                )
            if n_rows:
                start = dataset.shape[0]
                dataset.resize(start + n_rows, axis=0)
                dataset[start:] = array.astype(self.feature_dtype, copy=False)

    def append_objects(self, chunk: ObjectChunk) -> None:
        """Append a run of objects (sorted by frame) and their aligned feature rows."""
        if self.kind != "object":
            raise ShardError(f"{self.path}: append_objects on a kind={self.kind!r} shard")
        table = chunk.objects
        frames = np.asarray(table.frame_index)
        if len(frames):
            if frames[0] < max(self._last_frame, 0) or np.any(np.diff(frames) < 0):
                raise ValueError(f"{self.path}: object frame_index must be non-decreasing and >= 0 across chunks")
            self._last_frame = int(frames[-1])
        n = len(table)
        objects = self._open_file()["objects"]
        for name, dtype in _OBJECT_DTYPES.items():
            column = np.asarray(getattr(table, name), dtype=dtype)
            if n:
                objects[name].resize(self._rows + n, axis=0)
                objects[name][self._rows :] = column
        self._append_features(chunk.features, n)
        self._rows += n

    def append_frames(self, chunk: FrameChunk) -> None:
        """Append one feature row per frame for frames start_frame, start_frame+1, ... (contiguous)."""
        if self.kind != "frame":
            raise ShardError(f"{self.path}: append_frames on a kind={self.kind!r} shard")
        if chunk.start_frame != self._rows:
            raise ValueError(f"{self.path}: chunk starts at frame {chunk.start_frame}, expected {self._rows}")
        lengths = {len(v) for v in chunk.features.values()}
        if len(lengths) > 1:
            raise ValueError(f"{self.path}: features of one FrameChunk have different row counts {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        self._append_features(chunk.features, n)
        self._rows += n

    def finish(self, n_frames: int) -> None:
        """Record the video's frame count and mark the shard complete (committed when the block exits)."""
        file = self._open_file()
        if self.kind == "frame" and self._rows != n_frames:
            raise ShardError(f"{self.path}: {self._rows} frame rows written but n_frames={n_frames}")
        if self.kind == "object" and self._last_frame >= n_frames:
            raise ShardError(f"{self.path}: an object is on frame {self._last_frame} but n_frames={n_frames}")
        file.attrs["n_frames"] = int(n_frames)
        file.attrs["complete"] = True
        file.flush()
        self._finished = True


# ---------------------------------------------------------------------- reading
def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise ShardError(f"{path}: shard does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ShardError(f"{path}: cannot be opened as HDF5 ({error}); truncated or corrupt, delete it") from error


def _datasets(file: h5py.File) -> Iterator[h5py.Dataset]:
    groups = [file["features"], *([file["objects"]] if "objects" in file else [])]
    for group in groups:
        yield from group.values()


def _check(file: h5py.File, path: Path, expected_hash: str | None, expected_inputs: str | None = None) -> None:
    """Raise ShardError naming ``path`` unless the open file is a complete, consistent shard."""
    attrs = file.attrs
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ShardError(f"{path}: schema version {version}, this code reads {SCHEMA_VERSION}; recompute the shard")
    if not attrs.get("complete", False):
        raise ShardError(f"{path}: not marked complete (the writer did not finish); delete it and recompute")
    if expected_hash is not None and attrs.get("config_hash") != expected_hash:
        raise ShardError(f"{path}: written for config {attrs.get('config_hash')}, expected {expected_hash}")
    if expected_inputs is not None and attrs.get("inputs") != expected_inputs:
        raise ShardError(
            f"{path}: computed from inputs {attrs.get('inputs')!r}, but they are now {expected_inputs!r} "
            "(the video or an upstream result changed); it is stale and must be recomputed"
        )
    kind = attrs.get("kind")
    if kind not in ("object", "frame") or "features" not in file:
        raise ShardError(f"{path}: kind={kind!r} or the /features group is invalid")
    n_frames = int(attrs["n_frames"])
    if kind == "object":
        if "objects" not in file or set(file["objects"]) != set(_OBJECT_DTYPES):
            raise ShardError(f"{path}: object table is missing columns, expected {sorted(_OBJECT_DTYPES)}")
        expected_rows = {len(file["objects"][name]) for name in _OBJECT_DTYPES}
    else:
        expected_rows = {n_frames}
    for name, dataset in file["features"].items():
        expected_rows.add(len(dataset))
        if len(expected_rows) > 1:
            raise ShardError(f"{path}: feature {name!r} has {len(dataset)} rows, other columns {expected_rows}")
    unchecked = [d.name for d in _datasets(file) if not d.fletcher32]
    if unchecked:
        raise ShardError(f"{path}: datasets {unchecked} carry no checksum; recompute the shard")


def _verify_data(file: h5py.File, path: Path) -> None:
    """Read every chunk once, so HDF5 checks each Fletcher-32 checksum (memory: one chunk at a time)."""
    for dataset in _datasets(file):
        for chunk in dataset.iter_chunks() if len(dataset) else ():
            _read(dataset, path, chunk)


def _read(dataset: h5py.Dataset, path: Path, selection: Any = ()) -> np.ndarray:
    """``dataset[selection]``; a checksum or I/O failure becomes a ShardError naming the file."""
    try:
        return dataset[selection]
    except OSError as error:
        raise ShardError(
            f"{path}: dataset {dataset.name} is corrupt ({error}); delete the shard and recompute it"
        ) from error


def _feature_dataset(file: h5py.File, path: Path, feature: str) -> h5py.Dataset | None:
    """The feature's dataset; None for a shard with no rows at all (a writer never saw its dimension)."""
    if feature in file["features"]:
        return file["features"][feature]
    empty = len(file["objects/frame_index"]) == 0 if file.attrs["kind"] == "object" else file.attrs["n_frames"] == 0
    if empty:
        return None
    raise ShardError(f"{path}: no feature {feature!r}; it holds {sorted(file['features'])}")


def _read_all(dataset: h5py.Dataset | None, path: Path) -> np.ndarray:
    return np.zeros((0, 0), np.float32) if dataset is None else _read(dataset, path)


def validate_shard(
    path: str | Path,
    *,
    expected_hash: str | None = None,
    expected_inputs: str | None = None,
    verify_data: bool = False,
) -> None:
    """Raise ShardError (naming the file and the fix) unless ``path`` is a complete, consistent shard.

    ``expected_inputs``: the content digest its inputs must have now; ``verify_data``: also read every
    chunk and check its checksum (reads the whole shard, one chunk at a time).
    """
    path = Path(path)
    with _open(path) as file:
        _check(file, path, expected_hash, expected_inputs)
        if verify_data:
            _verify_data(file, path)


def shard_inputs(path: str | Path) -> str:
    """The content digest of the inputs a valid shard was computed from (``""`` when it records none)."""
    path = Path(path)
    with _open(path) as file:
        _check(file, path, None)
        return str(file.attrs["inputs"])


def read_shard(path: str | Path, *, features: Iterable[str] | None = None, expected_hash: str | None = None) -> Shard:
    """Load and validate one shard; ``features`` limits which feature arrays are read."""
    path = Path(path)
    with _open(path) as file:
        _check(file, path, expected_hash)
        names = list(file["features"]) if features is None else list(features)
        objects = None
        if file.attrs["kind"] == "object":
            objects = ObjectTable(**{name: _read(file["objects"][name], path) for name in _OBJECT_DTYPES})
        return Shard(
            path=path,
            kind=str(file.attrs["kind"]),  # type: ignore[arg-type]
            n_frames=int(file.attrs["n_frames"]),
            objects=objects,
            features={name: _read_all(_feature_dataset(file, path, name), path) for name in names},
            provenance=json.loads(file.attrs["provenance"]),
            config_hash=str(file.attrs["config_hash"]),
        )


def _feature_datasets(paths: Iterable[str | Path], feature: str) -> Iterator[h5py.Dataset]:
    """Open and validate each shard in turn and yield its ``feature`` dataset, checking d agrees across shards."""
    dim = None
    for path in map(Path, paths):
        with _open(path) as file:
            _check(file, path, None)
            dataset = _feature_dataset(file, path, feature)
            if dataset is None:
                continue
            if dim is not None and dataset.shape[1] != dim:
                raise ShardError(f"{path}: feature {feature!r} has d={dataset.shape[1]}, earlier shards {dim}")
            dim = dataset.shape[1]
            yield dataset


def feature_shape(paths: Iterable[str | Path], feature: str) -> tuple[int, int]:
    """(total rows, d) of ``feature`` over shards, from metadata only (validates every shard)."""
    total, dim = 0, None
    for dataset in _feature_datasets(paths, feature):
        total, dim = total + dataset.shape[0], dataset.shape[1]
    if dim is None:
        raise ShardError(f"no shards given to read feature {feature!r} from")
    return total, dim


def feature_rows(paths: Iterable[str | Path], feature: str) -> list[int]:
    """Rows of ``feature`` in each shard, in order (0 for a shard with no rows), from metadata only."""
    return [sum(dataset.shape[0] for dataset in _feature_datasets([path], feature)) for path in paths]


def iter_feature_batches(
    paths: Iterable[str | Path], feature: str, batch_size: int, dtype: np.dtype | str = np.float32
) -> Iterator[np.ndarray]:
    """Yield (batch_size, d) arrays of ``feature`` across shards in order; the last batch may be shorter.

    Only one batch plus one HDF5 read of at most ``batch_size`` rows is in memory at a time, so
    training sets larger than RAM (ShanghaiTech: ~275k frames) stream from disk.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dtype = np.dtype(dtype)
    buffer: np.ndarray | None = None
    filled = 0
    for dataset in _feature_datasets(paths, feature):
        if buffer is None:
            buffer = np.empty((batch_size, dataset.shape[1]), dtype)
        start = 0
        while start < len(dataset):
            take = min(batch_size - filled, len(dataset) - start)
            buffer[filled : filled + take] = _read(dataset, Path(dataset.file.filename), np.s_[start : start + take])
            filled += take
            start += take
            if filled == batch_size:
                yield buffer
                buffer, filled = np.empty_like(buffer), 0
    if buffer is not None and filled:
        yield buffer[:filled]


def stack_features(paths: Iterable[str | Path], feature: str, dtype: np.dtype | str = np.float32) -> np.ndarray:
    """All rows of ``feature`` over shards as one preallocated array (no intermediate copies)."""
    paths = list(paths)
    rows, dim = feature_shape(paths, feature)
    out = np.empty((rows, dim), np.dtype(dtype))
    start = 0
    for batch in iter_feature_batches(paths, feature, batch_size=65536, dtype=dtype):
        out[start : start + len(batch)] = batch
        start += len(batch)
    return out
