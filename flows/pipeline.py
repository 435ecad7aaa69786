"""The Prefect flows: ``pipeline`` end to end, and ``extract`` / ``train`` / ``score`` / ``evaluate`` up to a stage.

Every stage reads and writes the feature store, which is the cache: a stage flow reruns everything up
to its stage, and finished work (valid shards, saved models) is skipped. A rerun of a failed run
therefore recomputes exactly the videos that did not finish. Per-video tasks are mapped, so one bad
video fails alone: a bad test video (unreadable at discovery, or failing extraction or scoring) is set
aside, the others are extracted, scored and evaluated, and the flow fails at the end naming it; a bad
training video stops the run after extraction. Every run starts by removing the temporary files of
writers that died, and ``preflight`` checks what can be checked before any work.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger, tags
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field
from tqdm.contrib.logging import logging_redirect_tqdm

from mulde_vad.datasets import DatasetLayoutError, VideoRecord
from mulde_vad.features.config import resolve_device
from mulde_vad.features.extractors import available_extractors
from mulde_vad.flows.config import ConfigError, PipelineConfig, RunnerSettings, load_config, shipped_configs
from mulde_vad.inference.progress import ExtractionProgress, Listener, Progress, TrainingProgress
from mulde_vad.models.calibration import default_upper
from mulde_vad.models.score_store import FeatureSource
from mulde_vad.storage import FeatureStore, config_hash, read_shard
from mulde_vad.storage.aivad import AIVAD_FEATURES
from mulde_vad.tasks.common import new_run_dir, point_latest
from mulde_vad.tasks.discover import DatasetIndex, discover, discover_task
from mulde_vad.tasks.evaluate import Evaluation, evaluate_task
from mulde_vad.tasks.extract import STAGE as EXTRACT_STAGE
from mulde_vad.tasks.extract import ExtractResult, check_weights, extract_key, extract_task, extraction_config
from mulde_vad.tasks.import_aivad import import_task
from mulde_vad.tasks.report import report_task
from mulde_vad.tasks.score import score_task
from mulde_vad.tasks.train import TrainedModel, train_task

Stage = Literal["extract", "train", "score", "evaluate"]
#: The stage flows' own runner, which scores the test videos: bounded, as each scoring thread uses torch.
SCORING_RUNNER = ThreadPoolTaskRunner(max_workers=2)
#: Whether the stages show a live progress line on stderr (``console_progress``); the UI has their artifacts.
_CONSOLE: ContextVar[bool] = ContextVar("console_progress", default=False)


def _console_enabled() -> bool:
    """Whether ``console_progress`` is on. Flows read it through this function: a Dask task runner may pickle
    a flow's function by value, and a ContextVar among its globals cannot be pickled (a function can)."""
    return _CONSOLE.get()


@contextlib.contextmanager
def console_progress(enabled: bool = True) -> Iterator[None]:
    """Flows run inside the block show each stage's progress on stderr, with Prefect's console log lines
    printed above the line instead of through it."""
    token = _CONSOLE.set(enabled)
    try:
        with logging_redirect_tqdm() if enabled else contextlib.nullcontext():
            yield
    finally:
        _CONSOLE.reset(token)


class VideosFailed(RuntimeError):
    """Some per-video tasks failed; the others are stored and a rerun redoes only these.

    ``summary`` is what the run did with the other videos (with the evaluation when it got that far).
    """

    def __init__(self, message: str, summary: RunSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class RunSummary:
    """What a flow run did: counts, timings, and (from ``score`` on) the evaluation."""

    name: str
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    #: CPU seconds of the flow process per stage (its task threads included, Dask workers not): on a shared
    #: machine, wall time says how busy the machine was, CPU time how much work the stage was.
    cpu_timings: dict[str, float] = field(default_factory=dict)
    models: list[TrainedModel] = field(default_factory=list)
    evaluation: Evaluation | None = None
    report: Path | None = None
    failures: list[str] = field(default_factory=list)  # per stage, which videos failed and why


def task_runner(settings: RunnerSettings) -> Any:
    """Threads in this process, or Dask: a LocalCluster of ``max_workers`` processes or an existing scheduler."""
    if settings.kind == "thread":
        return ThreadPoolTaskRunner(max_workers=settings.max_workers)
    from prefect_dask import DaskTaskRunner  # imported only when asked for: dask is slow to import

    if settings.address:
        return DaskTaskRunner(address=settings.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.max_workers,
            "threads_per_worker": 1,
            "dashboard_address": settings.dashboard,
        }
    )


def run_name() -> str:
    """``<config name>-<stage>-<UTC time>``: a flow run's name in the UI says which dataset and stage it ran."""
    from prefect.runtime import flow_run

    config = flow_run.parameters.get("config_file") or flow_run.parameters.get("config", "demo")  # see flows.form
    if isinstance(config, PipelineConfig):
        name = config.name
    elif isinstance(config, Mapping):
        name = str(config.get("name", "config"))
    else:
        name = Path(str(config)).stem
    return f"{name}-{flow_run.flow_name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


#: The run form's fields, with the descriptions the Prefect UI shows.
CONFIG_PARAM: Any = Field(
    "demo", description=f"a config name ({', '.join(shipped_configs())}) or the path of a YAML file"
)
OVERRIDES_PARAM: Any = Field(
    None, description='dotted fields set over the config, like --set: {"mulde.epochs": 5, "dataset.root": "/data"}'
)


def resolve(config: PipelineConfig | str, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """The config to run: a loaded one as is, or a name or path loaded with ``overrides`` applied."""
    if isinstance(config, PipelineConfig):
        if overrides:
            raise ConfigError("overrides apply to a config name or path, not to a loaded config")
        return config
    return load_config(config, overrides)


def discover_dataset(cfg: PipelineConfig, run: Callable[..., DatasetIndex] = discover) -> DatasetIndex:
    """The config's dataset (the demo generated first), listed by ``run``: the flow's task, or plain ``discover``."""
    return run(cfg.dataset.name, cfg.dataset.root, cfg.dataset.demo.model_dump() if cfg.dataset.demo else None)


def preflight(cfg: PipelineConfig, *, extraction: bool = True, dataset: bool = False) -> None:
    """Check before any work what the config file alone cannot: the extraction preset and its override
    fields, the devices, every weights file the preset loads, and the calibration keys against the feature
    types. Raises one ConfigError naming the problem. With ``dataset``, then list the dataset too (the
    command line does, before its flow): a DatasetLayoutError names the file to fix."""
    try:
        resolve_device(cfg.mulde.device)
        if not extraction:
            names = set(cfg.evaluation.feature_types or AIVAD_FEATURES)
        else:
            config = extraction_config(cfg.extraction.preset, cfg.extraction.overrides)
            resolve_device(config.device)
            check_weights(config)
            names = set(config.extractors)
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise ConfigError(f"config {cfg.name!r}: {error}") from error
    unknown = sorted(set(cfg.evaluation.feature_types or ()) - names)
    if unknown:
        raise ConfigError(
            f"config {cfg.name!r}: evaluation.feature_types {unknown} are not produced; this run "
            f"produces {sorted(names)}"
        )
    # One config serves extraction and the AI-VAD import: a key of any known feature type is fine, a typo is not.
    known = names | set(AIVAD_FEATURES) | set(available_extractors())
    typos = sorted(set(cfg.evaluation.calibration_upper) - known)
    if typos:
        raise ConfigError(
            f"config {cfg.name!r}: evaluation.calibration_upper names unknown feature types {typos}; "
            f"known: {sorted(known)}"
        )
    if dataset:
        try:
            discover_dataset(cfg)
        except DatasetLayoutError as error:
            raise DatasetLayoutError(
                f"config {cfg.name!r}: {error} (see docs/datasets.md for the layout, or set dataset.root)"
            ) from error


def _collect(
    futures: Mapping[str, PrefectFuture], what: str, on_done: Callable[[Any], None]
) -> tuple[list, dict[str, str]]:
    """Wait for every future (keyed by video id), telling ``on_done`` each result (None: failed) as it comes;
    return the results and, per failed video, its error."""
    video_of = {future: video for video, future in futures.items()}
    results, failed = [], {}
    for future in as_completed(list(futures.values())):
        try:
            result = future.result()
            results.append(result)
        except Exception as exc:  # the task's own exception: recorded, the other videos carry on
            failed[video_of[future]] = f"{type(exc).__name__}: {exc}"
            result = None
        on_done(result)
    return results, failed


def _failure(what: str, failed: Mapping[str, str], total: int) -> str:
    listed = "; ".join(f"{video} ({why})" for video, why in sorted(failed.items()))
    return f"{len(failed)} of {total} {what} task(s) failed: {listed}"


def _artifact(description: str) -> UUID:
    """A progress artifact of the current flow run: the UI's view of a stage's progress."""
    return create_progress_artifact(0.0, description=description)


def _moving(artifact: UUID | None) -> Listener | None:
    """A Progress listener moving ``artifact`` to the fraction done."""
    return None if artifact is None else lambda fraction: update_progress_artifact(artifact, 100.0 * fraction)


# Not persisted, even under a flow that persists its results: a rerun of its parent must run it again (the
# store skips what is done), not reuse its outcome with the videos that failed.
@flow(name="extract-videos", log_prints=True, persist_result=False)
def extract_videos(
    records: list[VideoRecord],
    preset: str,
    overrides: dict[str, Any],
    store: Path,
    progress: UUID | None = None,
    timeout_s: float | None = None,
) -> tuple[list[ExtractResult], dict[str, str]]:
    """Map extraction over videos on the configured task runner, advancing the ``progress`` artifact (the
    pipeline run's) and the console line as they finish; return the results and, per failed video, why."""
    config = extraction_config(preset, overrides)
    task = extract_task.with_options(timeout_seconds=timeout_s)
    futures = {record.video_id: task.submit(record, config, store) for record in records}
    with ExtractionProgress(len(records), enabled=_console_enabled(), listener=_moving(progress)) as shown:
        return _collect(futures, "extraction", lambda result: shown.video_done(result.n_frames if result else 0))


def _extract(cfg: PipelineConfig, index: DatasetIndex, summary: RunSummary) -> tuple[list[FeatureSource], DatasetIndex]:
    """Extract every video; failed test videos are set aside in the returned index, a failed training video stops."""
    # Without labels (extraction needs none) the records are plain JSON: the UI shows the subflow's videos.
    records = [replace(r, labels=None) for r in (*index.train, *index.test)]
    progress = _artifact(f"extracting {len(records)} videos")
    runner = extract_videos.with_options(task_runner=task_runner(cfg.runner))
    results, failed = runner(
        records, cfg.extraction.preset, cfg.extraction.overrides, cfg.store, progress, cfg.runner.timeout_s
    )
    if failed:
        summary.failures.append(_failure("extraction", failed, len(records)))
        if any(r.video_id in failed for r in index.train) or len(failed) == len(index.test):
            raise VideosFailed("; ".join(summary.failures), summary)
        index = replace(index, test=[r for r in index.test if r.video_id not in failed])
    computed = sum(r.computed for r in results)
    summary.counts.update(extracted=computed, extraction_skipped=len(results) - computed)
    key = extract_key(extraction_config(cfg.extraction.preset, cfg.extraction.overrides))
    names = read_shard(results[0].path).features
    return [FeatureSource(name, EXTRACT_STAGE, key, upper=default_upper(name)) for name in names], index


def _select(cfg: PipelineConfig, sources: list[FeatureSource]) -> list[FeatureSource]:
    """The feature types named in ``evaluation.feature_types`` (all when unset), with configured calibration."""
    by_name = {s.name: s for s in sources}
    wanted = cfg.evaluation.feature_types or list(by_name)
    unknown = sorted(set(wanted) - set(by_name))
    if unknown:
        raise ValueError(f"evaluation.feature_types: {unknown} are not in the store; available: {sorted(by_name)}")
    upper, tail = cfg.evaluation.calibration_upper, cfg.evaluation.calibration_tail
    return [replace(by_name[n], upper=upper.get(n, by_name[n].upper), tail=tail) for n in wanted]


def _train(cfg: PipelineConfig, index: DatasetIndex, sources: list[FeatureSource], summary: RunSummary) -> None:
    params = cfg.mulde.estimator_params()
    train_ids = [r.video_id for r in index.train]
    listener = _moving(_artifact(f"training {len(sources)} models"))
    with TrainingProgress(len(sources), enabled=_console_enabled(), listener=listener) as shown:
        for source in sources:  # one at a time: each fit already uses every core; a skip returns a named state
            state = train_task(source, train_ids, params, cfg.store, shown.on_epoch(source.name), return_state=True)
            summary.models.append(state.result())
            shown.model_done()
    summary.counts.update(
        models_trained=sum(m.computed for m in summary.models),
        training_rows={m.source.name: m.n_train for m in summary.models},
    )


def _score(cfg: PipelineConfig, index: DatasetIndex, summary: RunSummary) -> dict[str, Path]:
    task = score_task.with_options(timeout_seconds=cfg.runner.timeout_s)
    futures = {r.video_id: task.submit(r.video_id, summary.models, cfg.store) for r in index.test}
    listener = _moving(_artifact(f"scoring {len(futures)} videos"))
    with Progress("score", len(futures), "video", enabled=_console_enabled(), listener=listener) as shown:
        results, failed = _collect(futures, "scoring", lambda _: shown.advance())
    if failed:
        summary.failures.append(_failure("scoring", failed, len(futures)))
        if not results:
            raise VideosFailed("; ".join(summary.failures), summary)
    summary.counts.update(scored=sum(r.computed for r in results), scoring_skipped=sum(not r.computed for r in results))
    return {r.video_id: r.path for r in results}


def run_stages(
    cfg: PipelineConfig, until: Stage, features: Callable[[DatasetIndex], list[FeatureSource]] | None = None
) -> RunSummary:
    """Discover → extract → train → score → evaluate + report, stopping after ``until``.

    ``features`` (e.g. an import of AI-VAD's released features) replaces extraction. Raises VideosFailed
    at the end, naming them, when some test videos failed while the others went through.
    """
    with tags(cfg.dataset.name, until):  # every task run (and the extraction subflow) names dataset and stage
        summary = _run_stages(cfg, until, features)
    if summary.failures:
        raise VideosFailed("; ".join(summary.failures), summary)
    return summary


def _run_stages(
    cfg: PipelineConfig, until: Stage, features: Callable[[DatasetIndex], list[FeatureSource]] | None
) -> RunSummary:
    logger = get_run_logger()
    preflight(cfg, extraction=features is None)
    removed = FeatureStore(cfg.store).clean_partial()
    if removed:
        logger.info("removed %d temporary file(s) of writers that died", len(removed))
    summary = RunSummary(cfg.name)
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(stage: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        summary.timings[stage], summary.cpu_timings[stage] = now - clock, cpu_now - cpu_clock
        clock, cpu_clock = now, cpu_now
        logger.info("%s done in %.1f s (CPU %.1f s)", stage, summary.timings[stage], summary.cpu_timings[stage])

    index = discover_dataset(cfg, discover_task)
    if index.failed:
        summary.failures.append(
            f"{len(index.failed)} test video(s) unreadable at discovery: "
            + "; ".join(f"{video} ({why})" for video, why in sorted(index.failed.items()))
        )
    summary.counts.update(dataset=cfg.dataset.name, train_videos=len(index.train), test_videos=len(index.test))
    lap("discover")
    if features is None:
        extracted, index = _extract(cfg, index, summary)
    else:
        extracted = features(index)
    sources = _select(cfg, extracted)
    lap("extract" if features is None else "import")
    if until == "extract":
        return summary
    _train(cfg, index, sources, summary)
    lap("train")
    if until == "train":
        return summary
    scores = _score(cfg, index, summary)
    lap("score")
    if until == "score":
        return summary
    output = new_run_dir(cfg.output / cfg.name)  # a folder per run; ``latest`` points at the last complete one
    summary.evaluation = evaluate_task(
        scores, index.labels, summary.models, output, cfg.evaluation.smoothing_sigma, cfg.evaluation.plots
    )
    lap("evaluate")
    keys = {m.source.name: {"features": config_hash(m.source.config), "model": m.key} for m in summary.models}
    summary.report = report_task(
        cfg.name,
        cfg.model_dump(mode="json"),
        summary.counts,
        summary.timings,
        summary.evaluation,
        output,
        cpu_timings=summary.cpu_timings,
        keys=keys,
    )
    point_latest(output)
    return summary


@flow(name="extract", flow_run_name=run_name, log_prints=True, task_runner=SCORING_RUNNER)
def extract_flow(
    config: PipelineConfig | str = CONFIG_PARAM, overrides: dict[str, Any] | None = OVERRIDES_PARAM
) -> RunSummary:
    """Extract every train and test video into the store (finished shards are skipped)."""
    return run_stages(resolve(config, overrides), "extract")


@flow(name="train", flow_run_name=run_name, log_prints=True, task_runner=SCORING_RUNNER)
def train_flow(
    config: PipelineConfig | str = CONFIG_PARAM, overrides: dict[str, Any] | None = OVERRIDES_PARAM
) -> RunSummary:
    """Extract what is missing, then fit one MULDE + GMM per feature type (saved models are reused)."""
    return run_stages(resolve(config, overrides), "train")


@flow(name="score", flow_run_name=run_name, log_prints=True, task_runner=SCORING_RUNNER)
def score_flow(
    config: PipelineConfig | str = CONFIG_PARAM, overrides: dict[str, Any] | None = OVERRIDES_PARAM
) -> RunSummary:
    """Everything up to the per-video raw frame scores of the test split (stored as frame shards)."""
    return run_stages(resolve(config, overrides), "score")


@flow(name="evaluate", flow_run_name=run_name, log_prints=True, task_runner=SCORING_RUNNER)
def evaluate_flow(
    config: PipelineConfig | str = CONFIG_PARAM, overrides: dict[str, Any] | None = OVERRIDES_PARAM
) -> RunSummary:
    """Recompute metrics, plots and the report from the stored scores (and anything missing before them)."""
    return run_stages(resolve(config, overrides), "evaluate")


@flow(name="pipeline", flow_run_name=run_name, log_prints=True, task_runner=SCORING_RUNNER)
def pipeline_flow(
    config: PipelineConfig | str = CONFIG_PARAM, overrides: dict[str, Any] | None = OVERRIDES_PARAM
) -> RunSummary:
    """The whole DAG from one config: discover, extract, train, score, evaluate, report."""
    return run_stages(resolve(config, overrides), "evaluate")


@flow(name="import-aivad", flow_run_name=run_name, log_prints=True, task_runner=SCORING_RUNNER)
def import_aivad_flow(
    config: PipelineConfig | str, features_dir: Path, clip_lengths_dir: Path, allow_pickle: bool = False
) -> RunSummary:
    """Import AI-VAD's released features (the paper's object-centric input), then train, score and evaluate.

    ``allow_pickle``: AI-VAD's files are pickled object arrays, and unpickling runs code: trusted files only.
    """
    cfg = resolve(config)

    def imported(index: DatasetIndex) -> list[FeatureSource]:
        return import_task(
            index,
            features_dir,
            clip_lengths_dir,
            cfg.store,
            cfg.evaluation.feature_types or AIVAD_FEATURES,
            allow_pickle,
        )

    return run_stages(cfg, "evaluate", features=imported)
