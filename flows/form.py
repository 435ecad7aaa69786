"""The deployments' run form: one entry flow per stage whose parameters the Prefect UI can offer as fields.

``pipeline_flow`` and the stage flows take a loaded PipelineConfig or any config name or path (the Python
API and the command line), which the UI's form can only show as free JSON. A deployment's form is built
from its flow's signature, so the deployments (prefect.yaml) run these flows instead, of the same names and
with the same stages: a shipped config picked from a list (built from ``configs/`` at import, so a config
added there is offered by the next ``mulde-vad ui``), or a YAML file instead; the dataset root; the
extraction preset, picked from a list; and dotted overrides as a mapping, like ``--set``.

Their results, and their tasks', are persisted under ``store/prefect-results`` of the directory the flow
runs in (the shipped configs' store), as the UI's Retry expects of a flow run. What a rerun skips is still
decided by the feature store: the extraction subflow persists nothing, so a Retry runs it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import Flow, flow
from pydantic import Field

from mulde_vad.features.config import PRESETS
from mulde_vad.flows.config import PipelineConfig, load_config, shipped_configs
from mulde_vad.flows.pipeline import (
    SCORING_RUNNER,
    RunSummary,
    Stage,
    evaluate_flow,
    extract_flow,
    pipeline_flow,
    run_name,
    run_stages,
    score_flow,
    train_flow,
)

ConfigName = Literal[tuple(shipped_configs())]  # type: ignore[valid-type]
#: An extraction preset, or "" for the config's own: the form shows one list, with no None toggle beside it.
PresetChoice = Literal[("", *sorted(PRESETS))]  # type: ignore[valid-type]
#: Relative: resolved in the flow run's working directory when a result is written.
RESULTS = Path("store") / "prefect-results"
#: The form's fields, with the descriptions the Prefect UI shows. Text left empty keeps the config's value.
CONFIG: Any = Field("demo", description="a shipped config: one of the files in configs/")
CONFIG_FILE: Any = Field("", description="or a YAML config file to use instead (relative to where `mulde-vad ui` runs)")
DATASET_ROOT: Any = Field("", description="the dataset's folder, if not the config's dataset.root")
PRESET: Any = Field("", description="an extraction preset, if not the config's extraction.preset")
OVERRIDES: Any = Field({}, description='dotted fields set over the config, like --set: {"mulde.epochs": 5}')


def form_config(
    config: str,
    config_file: str = "",
    dataset_root: str = "",
    preset: str = "",
    overrides: dict[str, Any] | None = None,
) -> PipelineConfig:
    """The config the form's fields describe: the file (or else the shipped config) with the fields set over it."""
    fields = dict(overrides or {})
    if dataset_root:
        fields["dataset.root"] = dataset_root
    if preset:
        fields["extraction.preset"] = preset
    return load_config(config_file or config, fields)


def _entry(python_flow: Flow, stage: Stage) -> Flow:
    """The entry flow of ``python_flow``'s deployments: its name and description, ``run_stages`` up to ``stage``."""

    def run(
        config: ConfigName = CONFIG,
        config_file: str = CONFIG_FILE,
        dataset_root: str = DATASET_ROOT,
        preset: PresetChoice = PRESET,
        overrides: dict[str, Any] = OVERRIDES,
    ) -> RunSummary:
        return run_stages(form_config(config, config_file, dataset_root, preset, overrides), stage)

    return flow(
        run,
        name=python_flow.name,
        description=python_flow.description,
        flow_run_name=run_name,
        log_prints=True,
        task_runner=SCORING_RUNNER,
        persist_result=True,
        result_storage=RESULTS,
    )


pipeline = _entry(pipeline_flow, "evaluate")
extract = _entry(extract_flow, "extract")
train = _entry(train_flow, "train")
score = _entry(score_flow, "score")
evaluate = _entry(evaluate_flow, "evaluate")
