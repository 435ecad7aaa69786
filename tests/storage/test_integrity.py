"""Store integrity under faults: flipped bytes, a full disk at every step of a write, stale inputs."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from mulde_vad.storage import FeatureStore, FrameChunk, ShardError, ShardWriter, make_provenance, read_shard
from mulde_vad.storage.provenance import content_digest
from mulde_vad.storage.shards import iter_feature_batches
from mulde_vad.storage.store import StaleShardWarning

CONFIG = {"stage": "integrity"}
ROWS = np.arange(64 * 8, dtype=np.float32).reshape(64, 8) / 100


def _write(path: Path, inputs: str = "video-a") -> Path:
    with ShardWriter(path, kind="frame", provenance=make_provenance(video=None, config=CONFIG), inputs=inputs) as w:
        w.append_frames(FrameChunk(0, {"x": ROWS}))
        w.finish(len(ROWS))
    return path


def _flip(path: Path, dataset: str, n_bytes: int = 16) -> None:
    """Invert ``n_bytes`` inside the first chunk of ``dataset``, as a bad sector or a stray write would."""
    with h5py.File(path, "r") as file:
        offset = file[dataset].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 40)
        data = handle.read(n_bytes)
        handle.seek(offset + 40)
        handle.write(bytes(b ^ 0xFF for b in data))


def _temps(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def test_flipped_feature_bytes_are_reported_by_file_and_the_shard_is_recomputed(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = _write(store.shard_path("frames", CONFIG, "v"))
    _flip(path, "features/x")
    with pytest.raises(ShardError, match=rf"{path.name}: dataset /features/x is corrupt .*recompute"):
        read_shard(path)
    with pytest.raises(ShardError, match="is corrupt"):
        list(iter_feature_batches([path], "x", batch_size=16))
    with pytest.warns(StaleShardWarning, match=rf"recomputing: .*{path.name}.*corrupt"):
        assert not store.reusable(path, inputs="video-a")
    assert not path.exists()  # never read again
    _write(path)
    assert store.reusable(path, inputs="video-a")
    np.testing.assert_array_equal(read_shard(path).features["x"], ROWS)


def test_a_shard_of_changed_inputs_is_stale(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    path = _write(store.shard_path("frames", CONFIG, "v"), inputs="video-a")
    assert store.is_complete(path, inputs="video-a") and not store.is_complete(path, inputs="video-b")
    with pytest.warns(StaleShardWarning, match="inputs 'video-a', but they are now 'video-b'"):
        assert not store.reusable(path, inputs="video-b")


def test_content_digest_follows_bytes_not_names_and_is_memoised(tmp_path: Path, monkeypatch) -> None:
    from mulde_vad.storage import provenance

    first, second = tmp_path / "a" / "clip.avi", tmp_path / "b" / "other.avi"
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(b"frames" * 1000)
    assert content_digest(first) == content_digest(second)  # same content elsewhere: results are reused
    stamp = first.stat().st_mtime_ns
    first.write_bytes(b"FRAMES" * 1000)  # re-encoded under the same name and size
    os.utime(first, ns=(stamp + 10**9,) * 2)
    assert content_digest(first) != content_digest(second)
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: reads.append(p) or real_open(p, *a, **k))
    content_digest(first), content_digest(first)
    assert reads == []  # hashed once per (path, size, mtime): later calls cost a stat
    provenance._digest.cache_clear()


def _enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("step", ["open", "write", "flush", "close", "fsync", "rename"])
def test_a_full_disk_at_any_step_raises_and_leaves_no_temp_file(tmp_path: Path, monkeypatch, step: str) -> None:
    store = FeatureStore(tmp_path)
    path = store.shard_path("frames", CONFIG, "v")
    real_file = h5py.File

    def open_then_fail(name, *args, **kwargs):
        real_file(name, *args, **kwargs).close()  # HDF5 created the file, then ran out of space
        _enospc()

    real_close = h5py.File.close
    calls = []

    def close_fails_once(self):
        calls.append(1)
        if len(calls) == 1:
            _enospc()
        real_close(self)

    patches = {
        "open": ("mulde_vad.storage.shards.h5py.File", open_then_fail),
        "write": ("h5py.Dataset.__setitem__", _enospc),
        "flush": ("h5py.File.flush", _enospc),
        "close": ("h5py.File.close", close_fails_once),
        "fsync": ("mulde_vad.storage.shards.os.fsync", _enospc),
        "rename": ("mulde_vad.storage.shards.os.replace", _enospc),
    }
    monkeypatch.setattr(*patches[step])
    with pytest.raises(OSError, match="No space left"):
        _write(path)
    monkeypatch.undo()
    assert _temps(tmp_path) == [] and not path.exists()
    assert store.is_complete(_write(path))  # the store is usable again


_FILL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from mulde_vad.storage import FeatureStore, FrameChunk, ShardWriter, make_provenance

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG), like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))
    path = FeatureStore(sys.argv[1]).shard_path("frames", {"k": 1}, "big")
    with ShardWriter(path, kind="frame", provenance=make_provenance(video=None, config={"k": 1})) as writer:
        for i in range(64):
            writer.append_frames(FrameChunk(i * 64, {"x": np.random.rand(64, 256).astype(np.float32)}))
        writer.finish(64 * 64)
    """
)


def test_a_real_write_past_the_size_limit_is_a_python_error_not_a_crash(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-c", _FILL_DISK, str(tmp_path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 1, run.stderr[-2000:]  # not 139 (SIGSEGV)
    assert "OSError: [Errno 27]" in run.stderr
    assert _temps(tmp_path) == []
