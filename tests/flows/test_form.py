"""The deployments' entry flows: typed form fields build the config; results are persisted in the store folder.

The schema a real server stores for the deployments is checked in test_ui.py.
"""

from __future__ import annotations

import json

import pytest
from conftest import tiny_overrides

from mulde_vad.flows import form
from mulde_vad.flows.config import ConfigError, shipped_configs

pytestmark = pytest.mark.usefixtures("prefect_db")


def test_the_form_fields_are_set_over_the_chosen_config(tmp_path):
    config = form.form_config("ped2", dataset_root=str(tmp_path), preset="weightfree", overrides={"mulde.epochs": 3})
    assert (config.name, config.dataset.root, config.extraction.preset) == ("ped2", tmp_path, "weightfree")
    assert config.mulde.epochs == 3
    assert form.form_config("ped2").extraction.preset == "aivad_ped2"  # empty fields keep the config's values
    mine = tmp_path / "mine.yaml"
    mine.write_text(json.dumps({"name": "mine", "dataset": {"name": "folder", "root": "data"}}))
    assert form.form_config("ped2", config_file=str(mine)).name == "mine"  # the file replaces the shipped config
    with pytest.raises(ConfigError, match=r"ped2\.yaml: invalid config: mulde\.epochs"):
        form.form_config("ped2", overrides={"mulde.epochs": 0})


def test_the_entry_flows_offer_the_shipped_configs_and_persist_their_results(tmp_path, fake_features, monkeypatch):
    schema = form.pipeline.parameters.model_dump()["properties"]
    assert schema["config"]["enum"] == shipped_configs()
    assert [f.name for f in (form.pipeline, form.extract, form.train, form.score, form.evaluate)] == [
        "pipeline",
        "extract",
        "train",
        "score",
        "evaluate",
    ]
    monkeypatch.chdir(tmp_path)  # results go to store/prefect-results of the directory the flow runs in
    summary = form.extract("demo", overrides=tiny_overrides(tmp_path, "form"))
    assert summary.name == "form" and summary.counts["extracted"] == 6
    assert any((tmp_path / "store" / "prefect-results").iterdir())
