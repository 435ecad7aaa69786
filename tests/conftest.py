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
os.environ.setdefault("MPLBACKEND", "Agg")
