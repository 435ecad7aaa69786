"""Session-wide test environment: no network, no writes outside a temporary folder."""

import os
import tempfile

_SANDBOX = tempfile.mkdtemp(prefix="mulde-vad-tests-")
# Set before any test module imports ultralytics or prefect, which read these at import time.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_SANDBOX, "ultralytics"))
os.environ.setdefault("PREFECT_HOME", os.path.join(_SANDBOX, "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Weights resolve only from what a test puts there: an empty download cache, no user weights folder.
os.environ["MULDE_VAD_CACHE"] = os.path.join(_SANDBOX, "cache")
os.environ.pop("MULDE_VAD_WEIGHTS", None)
os.environ.setdefault("MPLBACKEND", "Agg")
# Tests use tiny networks; one BLAS/OpenMP thread per process avoids the spin-wait collapse (20-50×
# slower) when test subprocesses, a Prefect server or Dask workers share the 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
