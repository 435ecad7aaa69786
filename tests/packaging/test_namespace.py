"""Nothing on sys.path can shadow the project's subpackages: they live under ``mulde_vad`` only.

A Dask worker that spills creates ``<worker dir>/storage`` and puts the worker dir first on sys.path;
when the project installed a top-level ``storage`` package, that folder replaced it inside the workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mulde_vad


def test_a_spill_folder_named_storage_first_on_sys_path_does_not_shadow_mulde_vad_storage(tmp_path: Path) -> None:
    spill = tmp_path / "worker-dir" / "storage"
    spill.mkdir(parents=True)
    (spill / "__init__.py").write_text('raise ImportError("the Dask spill folder was imported")\n')
    package = Path(mulde_vad.__file__).parent
    script = f"""
import sys
sys.path.insert(0, {str(spill.parent)!r})
import mulde_vad.storage
from mulde_vad.tasks.common import stage_key
from mulde_vad.storage import FeatureStore
assert mulde_vad.storage.__file__ == {str(package / "storage" / "__init__.py")!r}, mulde_vad.storage.__file__
print(stage_key("extract", {{}})["code"])
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", script], cwd=spill.parent, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("/")[0] == mulde_vad.__version__  # the one version enters every cache key
