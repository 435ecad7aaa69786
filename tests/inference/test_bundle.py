"""Bundle errors a user can act on, the fit/predict/export commands, and exported scoring without mulde-vad."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from mulde_vad.features.config import ExtractionConfig
from mulde_vad.features.extract import extract_video
from mulde_vad.flows.cli import main
from mulde_vad.inference.bundle import BundleError, load_bundle
from mulde_vad.inference.export import ExportedScorer, export_bundle, mulde_arrays
from mulde_vad.inference.fit import MemorySink
from mulde_vad.models.calibration import Calibration
from mulde_vad.models.mulde import MULDE


def copy_bundle(bundle_dir, tmp_path, edit=None):
    copy = shutil.copytree(bundle_dir, tmp_path / "copy")
    if edit:
        manifest = json.loads((copy / "bundle.json").read_text())
        edit(manifest)
        (copy / "bundle.json").write_text(json.dumps(manifest))
    return copy


def test_missing_bundle_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(BundleError, match=r"nowhere does not exist: it is not a mulde-vad bundle; create one with"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"holds no bundle\.json"):
        load_bundle(tmp_path / "empty")


def test_other_format_version_or_damaged_manifest_is_refused(bundle_dir, tmp_path):
    old = copy_bundle(bundle_dir, tmp_path, lambda m: m.update(format_version=0))
    with pytest.raises(BundleError, match=r"format version 0, this mulde-vad reads versions \(1, 2\): refit"):
        load_bundle(old)
    (old / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"bundle\.json is damaged"):
        load_bundle(old)


def test_a_version_1_bundle_loads_with_the_linear_calibration_it_was_fitted_with(bundle_dir, tmp_path):
    def version_1(manifest):
        manifest["format_version"] = 1
        for entry in manifest["feature_types"].values():
            del entry["calibration"]["tail"]

    loaded = load_bundle(copy_bundle(bundle_dir, tmp_path, version_1), device="cpu")
    assert {f.calibration.tail for f in loaded.features.values()} == {"linear"}


def test_bundle_of_another_preset_is_refused(bundle_dir):
    with pytest.raises(BundleError, match="fitted with extraction preset 'weightfree', not 'aivad_ped2'"):
        load_bundle(bundle_dir, preset="aivad_ped2")


def test_incompatible_models_are_refused(bundle_dir, tmp_path):
    def wrong_width(manifest):
        manifest["feature_types"]["velocity"]["n_features"] = 99

    with pytest.raises(BundleError, match=r"'velocity'.*for 8 features, but 99 were expected"):
        load_bundle(copy_bundle(bundle_dir, tmp_path, wrong_width))
    shutil.rmtree(tmp_path / "copy")
    broken = copy_bundle(bundle_dir, tmp_path)
    (broken / "models" / "geometry.mulde").write_bytes(b"garbage")
    with pytest.raises(BundleError, match=r"'geometry'.*not a readable MULDE model file"):
        load_bundle(broken)


def test_cli_prints_one_line_errors(bundle_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "mulde-vad predict:" in capsys.readouterr().err
    assert main(["predict", str(bundle_dir), str(tmp_path / "x.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "x.mp4: no such video file, folder or stream URL" in capsys.readouterr().err


def test_fit_and_predict_commands_on_a_folder(demo, tmp_path, capsys):
    train = tmp_path / "normal"
    train.mkdir()
    for video in sorted((demo / "train").iterdir())[:2]:
        shutil.copytree(video, train / video.name)
    bundle = tmp_path / "bundle"
    assert main(["fit", str(train), "--out", str(bundle), "--epochs", "2", "--folds", "2", "--device", "cpu"]) == 0
    shown = capsys.readouterr().err  # the live display: videos with frames/s, then models with step and loss
    assert "extract: 100%" in shown and "2/2" in shown and "frames/s" in shown
    assert "train: 100%" in shown and re.search(r" step (\d+)/\1 loss ", shown)
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["threshold"]["method"] == "held_out_videos" and manifest["threshold"]["folds"] == 2
    assert [t["video"].rsplit("/", 1)[-1] for t in manifest["provenance"]["training"]] == ["train_00", "train_01"]
    assert manifest["preset"] == "weightfree" and manifest["provenance"]["versions"]["torch"]
    out = tmp_path / "pred"
    args = ["predict", str(bundle), str(demo / "test"), "--out", str(out), "--max-frames", "20", "--quiet"]
    assert main([*args, "--no-overlay", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["test_00", "test_01", "test_02", "test_03"]
    assert "test_03: 20 frames" in capsys.readouterr().out


@pytest.fixture(scope="module")
def real_rows(bundle_dir, demo):
    """Feature rows of a demo test video (normal and anomalous objects), per type."""
    bundle = load_bundle(bundle_dir, device="cpu")
    sink = MemorySink()
    extract_video(demo / "test" / "test_01", bundle.extraction_config(device="cpu"), sink)
    return bundle, {name: sink.rows(name).astype(np.float32) for name in bundle.features}


def test_torchscript_export_scores_like_the_package_without_it(real_rows, tmp_path):
    bundle, rows = real_rows
    out = export_bundle(bundle, tmp_path / "ts", "torchscript")
    script = (
        "import sys, json, numpy as np, torch\n"
        "d = sys.argv[1]; spec = json.load(open(d + '/scoring.json'))\n"
        "for name, t in spec['feature_types'].items():\n"
        "    x = torch.from_numpy(np.load(d + '/' + name + '.npy'))\n"
        "    np.save(d + '/' + name + '.out.npy', torch.jit.load(d + '/' + t['file'])(x).detach().numpy())\n"
        "assert not any(m.startswith('mulde_vad') for m in sys.modules), 'the package was imported'\n"
    )
    for name, x in rows.items():
        np.save(out / f"{name}.npy", x)
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}  # no PYTHONPATH: the package is not importable
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
    for name, x in rows.items():
        exported = np.load(out / f"{name}.out.npy")
        feature = bundle.features[name]
        expected = feature.model.anomaly_score(x)
        assert np.abs(exported[:, 0] - expected).max() <= 1e-5 * np.abs(expected).max()
        np.testing.assert_allclose(exported[:, 1], feature.calibration.transform(expected), rtol=1e-5, atol=1e-6)


def test_onnx_export_scores_like_the_package(real_rows, tmp_path):
    import onnxruntime

    bundle, rows = real_rows
    out = export_bundle(bundle, tmp_path / "onnx", "onnx")
    assert json.loads((out / "scoring.json").read_text())["threshold"] == bundle.threshold.value
    for name, x in rows.items():
        exported = onnxruntime.InferenceSession(str(out / f"{name}.onnx")).run(None, {"features": x})[0]
        expected = bundle.features[name].model.anomaly_score(x)
        assert np.abs(exported[:, 0] - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.parametrize(("fusion", "tail"), [("robust", "log"), ("gmm", "linear"), ("max", "log"), ("mean", "linear")])
def test_exported_module_reproduces_every_fusion_and_calibration_tail(fusion, tail):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=300), rng.normal(size=300) * 0.3 + 1.0])
    model = MULDE(hidden_units=(16, 16), epochs=3, fusion=fusion, gmm_components=2, device="cpu").fit(X)
    test = np.vstack([X[:20], rng.normal(size=(20, 2)) * 3]).astype(np.float32)
    calibration = Calibration(-1.0, 3.0, tail)
    scorer = torch.jit.script(ExportedScorer(mulde_arrays(model), calibration).eval())
    exported = scorer(torch.from_numpy(test)).numpy()
    expected = model.anomaly_score(test)
    np.testing.assert_allclose(exported[:, 0], expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    u = (expected + 1.0) / 4.0
    assert (u > 1).any(), "the test rows must reach the tail"
    np.testing.assert_allclose(exported[:, 1], calibration.transform(expected), rtol=1e-9, atol=1e-9)
    if tail == "linear":
        np.testing.assert_allclose(exported[:, 1], u, rtol=1e-9, atol=1e-9)


def test_fit_command_on_a_dataset_config_uses_its_train_split_and_settings(tmp_path):
    config = {
        "name": "tiny",
        "dataset": {
            "name": "demo",
            "root": str(tmp_path / "data"),
            "demo": {"n_train": 2, "n_test": 2, "n_frames": 50},
        },
        "extraction": {"preset": "weightfree"},
        "mulde": {"hidden_units": [16, 16], "epochs": 2, "device": "cpu"},
        "evaluation": {"smoothing_sigma": 2.0},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    assert main(["fit", str(path), "--out", str(tmp_path / "bundle"), "--folds", "2", "--device", "cpu"]) == 0
    manifest = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    assert [t["video"].rsplit("/", 1)[-1] for t in manifest["provenance"]["training"]] == ["train_00", "train_01"]
    assert manifest["mulde"]["hidden_units"] == [16, 16] and manifest["mulde"]["epochs"] == 2
    assert manifest["smoothing"]["sigma"] == 2.0


def test_weights_other_than_the_fitted_ones_are_refused(bundle_dir, tmp_path):
    from mulde_vad.inference.predict import Predictor

    weights = tmp_path / "mnv2.pt"
    weights.write_bytes(b"not the weights the bundle was fitted with")

    def record(manifest):
        manifest["extraction"]["extractors"] = [*manifest["extraction"]["extractors"], "backbone"]
        manifest["extraction"]["backbone"] = "mobilenetv2_bottleneck"
        manifest["extraction"]["backbone_weights"] = str(weights)
        manifest["provenance"]["weights"] = {"backbone_weights": {"file": str(weights), "sha256": "0" * 64}}

    bundle = load_bundle(copy_bundle(bundle_dir, tmp_path, record), device="cpu")
    with pytest.raises(BundleError, match=r"mnv2\.pt is not the file this bundle was fitted with"):
        Predictor(bundle)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_bundle_runs_at_the_precision_it_was_fitted_with_whatever_its_preset_now_says(bundle_dir, precision):
    """fp32 is left out of the stored config (its hash predates the field); it must not come back as the
    bf16 of the yolo_mobilenet preset."""
    bundle = load_bundle(bundle_dir)
    config = ExtractionConfig.preset("yolo_mobilenet", cpu_precision=precision)
    bundle = replace(bundle, preset="yolo_mobilenet", extraction=config.to_dict())
    assert bundle.extraction_config(device="cpu").cpu_precision == precision


def test_a_bundle_records_the_precision_its_features_were_computed_at(demo, monkeypatch, caplog):
    """Fitted with bf16 asked for on a CPU without native bfloat16, the features are float32 and the bundle
    says so; a bf16 bundle predicting on such a CPU warns that its features differ there."""
    from demo_footage import TINY_MULDE

    from mulde_vad.features import precision
    from mulde_vad.inference.fit import FitOptions, fit_bundle
    from mulde_vad.inference.predict import Predictor

    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    config = ExtractionConfig.preset("weightfree", cpu_precision="bf16", device="cpu")
    videos = sorted((demo / "train").iterdir())[:2]
    options = FitOptions(mulde_params={**TINY_MULDE, "max_steps": 5}, folds=2)
    bundle = fit_bundle(videos, "weightfree", config, options, log=lambda _: None)
    assert bundle.extraction_config(device="cpu").cpu_precision == "fp32"
    assert not any("fitted on bfloat16" in r.getMessage() for r in caplog.records)
    Predictor(bundle)
    assert not any("fitted on bfloat16" in r.getMessage() for r in caplog.records)

    bf16_bundle = replace(bundle, extraction={**bundle.extraction, "cpu_precision": "bf16"})
    predictor = Predictor(bf16_bundle)
    assert predictor.config.cpu_precision == "fp32"
    assert any("fitted on bfloat16 features" in r.getMessage() for r in caplog.records)
