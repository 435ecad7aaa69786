"""Run configuration: the YAML files carry the paper's settings, and a bad file fails naming the field."""

from __future__ import annotations

import pytest

from mulde_vad.flows.config import ConfigError, load_config


@pytest.mark.parametrize("name", ["ped2", "avenue", "shanghaitech", "ubnormal", "ucf_crime", "demo"])
def test_every_shipped_config_loads(name):
    config = load_config(name)
    assert config.name == name
    assert config.dataset.name == name


@pytest.mark.parametrize("name", ["ped2", "avenue", "shanghaitech", "ubnormal", "ucf_crime"])
def test_benchmark_configs_use_the_paper_settings(name):
    mulde = load_config(name).mulde.estimator_params()
    assert mulde["hidden_units"] == (4096, 4096)
    noise = (mulde["sigma_low"], mulde["sigma_high"], mulde["n_scales"], mulde["scale_spacing"])
    assert noise == (1e-3, 1.0, 16, "linear")
    assert (mulde["beta"], mulde["learning_rate"], mulde["batch_size"], mulde["epochs"]) == (0.1, 4e-5, 2048, 1000)
    assert (mulde["lr_schedule"], mulde["fusion"], mulde["gmm_components"]) == ("constant", "gmm", 5)


def test_mulde_settings_override_the_recipe_field_by_field():
    params = load_config("ped2", {"mulde.epochs": 3, "mulde.fusion": "max"}).mulde.estimator_params()
    assert (params["epochs"], params["fusion"], params["hidden_units"]) == (3, "max", (4096, 4096))
    default = load_config("ped2", {"mulde.recipe": "default", "mulde.max_steps": 500}).mulde.estimator_params()
    assert default["max_steps"] == 500 and "epochs" not in default and "fusion" not in default  # MULDE's own


def test_object_centric_smoothing_and_feature_types_follow_aivad():
    assert load_config("ped2").evaluation.smoothing_sigma == 3.0
    assert load_config("avenue").evaluation.smoothing_sigma == 3.0
    shanghaitech = load_config("shanghaitech").evaluation
    assert shanghaitech.smoothing_sigma == 7.0
    assert shanghaitech.feature_types == ["velocity", "pose"]  # AI-VAD drops deep features there
    assert shanghaitech.calibration_upper == {"velocity": 99.9, "pose": 99.9, "deep_features": "max"}
    assert load_config("ucf_crime").extraction.preset == "frame_centric"


def test_bad_field_is_named_with_the_file():
    with pytest.raises(ConfigError, match=r"demo\.yaml: invalid config: mulde\.epochs: Input should be greater"):
        load_config("demo", {"mulde.epochs": 0})


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigError, match=r"mulde\.epoch: Extra inputs are not permitted"):
        load_config("demo", {"mulde.epoch": 5})


def test_cross_field_rules():
    with pytest.raises(ConfigError, match=r"sigma_low .* must be below sigma_high"):
        load_config("demo", {"mulde.sigma_low": 2.0, "mulde.sigma_high": 1.0})
    with pytest.raises(ConfigError, match="address is only used with kind: dask"):
        load_config("demo", {"runner.address": "tcp://127.0.0.1:8786"})
    with pytest.raises(ConfigError, match="demo settings are only allowed with name: demo"):
        load_config("ped2", {"dataset.demo": {"seed": 1}})


def test_dotted_overrides_keep_the_rest_of_the_section():
    config = load_config("demo", {"mulde.epochs": 7, "runner.kind": "dask"})
    assert config.mulde.epochs == 7
    assert config.mulde.hidden_units == (256, 256)  # untouched field of the same section
    assert config.runner.kind == "dask"


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no-such-config: no such config file"):
        load_config("no-such-config")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: expected a mapping"):
        load_config(bad)
