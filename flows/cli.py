"""``mulde-vad``: the flows from the command line.

    mulde-vad demo                       # generate the synthetic dataset, run the whole DAG, print AUCs
    mulde-vad run CONFIG                 # the whole DAG for configs/CONFIG.yaml (or a path)
    mulde-vad extract|train|score|evaluate CONFIG
    mulde-vad import-aivad CONFIG --features-dir D --clip-lengths-dir C [--allow-pickle]
    mulde-vad ui                         # local Prefect server + deployments + a worker
    mulde-vad weights                    # each preset's models, where their weights are, present or not
    mulde-vad fit SOURCE --out BUNDLE | predict BUNDLE INPUT --out DIR | export BUNDLE --format F

Every run command accepts ``--set section.field=value`` (YAML values), ``--runner``/``--address``, ``--quiet``
(no progress display) and ``--debug`` (the traceback of an error a user can fix, which is otherwise one line).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mulde_vad import __version__
from mulde_vad.datasets import DatasetLayoutError
from mulde_vad.flows import footage
from mulde_vad.flows.config import ConfigError, PipelineConfig, load_config

#: Errors in what the user gave (a config, a dataset folder): one line naming the file and the fix, exit code 2.
FIXABLE: tuple[type[Exception], ...] = (ConfigError, DatasetLayoutError)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.field=value")
        overrides[key] = yaml.safe_load(value)
    if args.runner:
        overrides["runner.kind"] = args.runner
    if args.address:
        overrides.update({"runner.kind": "dask", "runner.address": args.address})
    return overrides


def print_summary(summary: Any) -> None:
    counts = ", ".join(f"{k}={v}" for k, v in summary.counts.items())
    cpu = summary.cpu_timings
    timings = ", ".join(
        f"{k} {v:.1f}s" + (f" (CPU {cpu[k]:.1f}s)" if k in cpu else "") for k, v in summary.timings.items()
    )
    print(f"\n{summary.name}: {counts}\ntimings: {timings} (total {sum(summary.timings.values()):.1f}s)")
    if summary.evaluation is None:
        return
    from mulde_vad.tasks.report import percent

    if summary.evaluation.undefined:
        print(f"\nAUC {summary.evaluation.undefined}")
    else:
        print(f"\n{'scores':<16}{'micro AUC':>10}{'macro AUC':>10}{'macro (skip)':>14}")
        for name, row in summary.evaluation.aucs.items():
            micro, macro, skip = (percent(row[k], None) for k in ("micro", "macro", "macro_skip"))
            print(f"{name:<16}{micro:>10}{macro:>10}{skip:>14}")
    print(f"\nreport: {summary.report}\nper-frame scores: {summary.evaluation.files['scores_csv']}")


@contextlib.contextmanager
def temporary_server() -> Iterator[None]:
    """The configured Prefect API, or, when none is set, a local server for this command only.

    Prefect's own temporary server outlives a CLI killed with ``kill -9``; this one is the CLI's child
    and is stopped by the kernel when the CLI dies (``flows.ui.local_server``).
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from mulde_vad.flows.ui import free_port, local_server

    if PREFECT_API_URL.value():
        yield
        return
    with local_server(Path(PREFECT_HOME.value()), free_port()) as env:
        url = env["PREFECT_API_URL"]
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # for task-runner processes (Dask workers) started from here
        try:
            with temporary_settings({PREFECT_API_URL: url}):
                try:
                    yield
                finally:  # send the run's last logs and events while the server is still up
                    for worker in (APILogWorker, EventsWorker):
                        worker.drain_all(timeout=5)
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


def _fixable(args: argparse.Namespace, error: Exception) -> int:
    """Report an error the user can fix: one line on stderr, after its traceback with ``--debug``; exit code 2."""
    if args.debug:
        traceback.print_exception(error)
    print(f"mulde-vad: {error}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, config: PipelineConfig) -> int:
    from mulde_vad.flows import pipeline  # Prefect imports take a few seconds: only when a flow runs

    try:  # everything checkable before any work, the dataset's layout included: never a traceback from a flow
        pipeline.preflight(config, extraction=args.command != "import-aivad", dataset=True)
    except FIXABLE as error:
        return _fixable(args, error)
    flows = {
        "demo": pipeline.pipeline_flow,
        "run": pipeline.pipeline_flow,
        "extract": pipeline.extract_flow,
        "train": pipeline.train_flow,
        "score": pipeline.score_flow,
        "evaluate": pipeline.evaluate_flow,
    }
    try:
        with temporary_server(), pipeline.console_progress(not args.quiet):
            if args.command == "import-aivad":
                summary = pipeline.import_aivad_flow(
                    config, args.features_dir, args.clip_lengths_dir, allow_pickle=args.allow_pickle
                )
            else:
                summary = flows[args.command](config)
    except pipeline.VideosFailed as exc:
        if exc.summary is not None:
            print_summary(exc.summary)
        print(f"mulde-vad: {exc}", file=sys.stderr)
        return 1
    print_summary(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mulde-vad", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    common.add_argument("--runner", choices=["thread", "dask"], help="task runner for per-video extraction")
    common.add_argument("--address", help="tcp://host:8786 of an existing Dask scheduler (implies --runner dask)")
    common.add_argument("--quiet", action="store_true", help="no progress display")
    common.add_argument("--debug", action="store_true", help="with an error in the config or dataset, its traceback")
    demo = commands.add_parser("demo", parents=[common], help="synthetic dataset through the whole DAG")
    demo.add_argument("--preset", help="extraction preset (default weightfree; e.g. one using YOLO + CLIP weights)")
    for name, text in [
        ("run", "the whole DAG"),
        ("extract", "extract features into the store"),
        ("train", "up to trained MULDE models"),
        ("score", "up to per-video frame scores"),
        ("evaluate", "the whole DAG, reusing everything stored"),
    ]:
        commands.add_parser(name, parents=[common], help=text).add_argument("config", help="name in configs/ or path")
    aivad = commands.add_parser("import-aivad", parents=[common], help="train/evaluate on AI-VAD's released features")
    aivad.add_argument("config")
    aivad.add_argument("--features-dir", type=Path, required=True, help="extracted_features/<ds> of AI-VAD")
    aivad.add_argument("--clip-lengths-dir", type=Path, required=True, help="data/<ds> holding *_clip_lengths.npy")
    aivad.add_argument(
        "--allow-pickle",
        action="store_true",
        help="AI-VAD's feature files are numpy object arrays, which numpy stores with pickle, and unpickling runs "
        "any code the file contains: pass this only for files from a source you trust (e.g. AI-VAD's own release)",
    )
    ui = commands.add_parser("ui", help="local Prefect server (127.0.0.1, SQLite), deployments and a worker")
    ui.add_argument("--port", type=int, default=4200)
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, with a warning)"
    )
    ui.add_argument("--home", type=Path, help="PREFECT_HOME of the server (default: .prefect in the package directory)")
    ui.add_argument("--no-worker", action="store_true", help="only the server")
    commands.add_parser("weights", help="each preset's models, where their weights are looked for, present or not")
    footage.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: telemetry only logs errors
    args = build_parser().parse_args(argv)
    if args.command == "ui":
        from mulde_vad.flows.ui import serve_ui

        return serve_ui(port=args.port, worker=not args.no_worker, host=args.host, home=args.home)
    if args.command == "weights":
        from mulde_vad.features.weights_table import weights_table

        print(weights_table())
        return 0
    if hasattr(args, "handler"):
        return footage.run(args)
    try:
        overrides = _overrides(args)
        if args.command == "demo" and args.preset:
            overrides["extraction.preset"] = args.preset
        config = load_config("demo" if args.command == "demo" else args.config, overrides)
    except ConfigError as error:
        return _fixable(args, error)
    return _run(args, config)


if __name__ == "__main__":
    sys.exit(main())
