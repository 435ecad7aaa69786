"""Every adapter on a tiny fixture in its dataset's layout: exact ids, frame counts and labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from mulde_vad.datasets import DatasetLayoutError, get_adapter
from mulde_vad.datasets.base import count_video_frames, frame_count, frame_files


def write_frames(folder: Path, n: int, ext: str = ".jpg", width: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        name = f"{i:0{width}d}{ext}" if width else f"{i}{ext}"
        cv2.imwrite(str(folder / name), np.full((8, 8), i, np.uint8))
    return folder


def write_video(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = "mp4v" if path.suffix == ".mp4" else "XVID"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (32, 24))
    for i in range(n):
        writer.write(np.full((24, 32, 3), 4 * i, np.uint8))
    writer.release()
    return path


def mask(n: int, *ones: tuple[int, int]) -> list[int]:
    """0-based inclusive intervals → list of 0/1, for readable expected values."""
    out = [0] * n
    for a, b in ones:
        out[a : b + 1] = [1] * (b - a + 1)
    return out


def summary(records) -> list[tuple]:
    return [(r.video_id, r.split, r.source.name, None if r.labels is None else r.labels.tolist()) for r in records]


def test_frames_sort_numerically_and_videos_count_exactly(tmp_path: Path) -> None:
    folder = write_frames(tmp_path / "v", 12, ".jpg", width=0)
    assert [p.name for p in frame_files(folder)][:3] == ["0.jpg", "1.jpg", "2.jpg"]
    assert frame_files(folder)[-1].name == "11.jpg" and frame_count(folder) == 12
    assert count_video_frames(write_video(tmp_path / "a.avi", 23)) == 23
    assert count_video_frames(write_video(tmp_path / "a.mp4", 17)) == 17


UCSD_M = """TestVideoFile = {};
TestVideoFile{end+1}.gt_frame = [3:5];
% a comment line
TestVideoFile{end+1}.gt_frame = [1:2, 6:7];
TestVideoFile{end+1}.gt_frame = [8];
"""


def test_ped2_original_layout_with_several_intervals(tmp_path: Path) -> None:
    root = tmp_path / "UCSDped2"
    write_frames(root / "Train" / "Train001", 4, ".tif")
    write_frames(root / "Train" / "Train002", 5, ".tif")
    for i, n in enumerate((6, 8, 9), start=1):
        write_frames(root / "Test" / f"Test{i:03d}", n, ".tif")
    write_frames(root / "Test" / "Test001_gt", 6, ".bmp")  # pixel masks: not a video
    (root / "Test" / "UCSDped2.m").write_text(UCSD_M)
    adapter = get_adapter("ped2", root)
    assert summary(adapter.videos("train")) == [
        ("train_01", "train", "Train001", None),
        ("train_02", "train", "Train002", None),
    ]
    assert summary(adapter.videos("test")) == [
        ("test_01", "test", "Test001", mask(6, (2, 4))),
        ("test_02", "test", "Test002", mask(8, (0, 1), (5, 6))),
        ("test_03", "test", "Test003", mask(9, (7, 7))),
    ]
    assert all(r.labels.dtype == np.uint8 for r in adapter.videos("test"))


def test_ped1_m_file_that_overruns_a_video_names_it(tmp_path: Path) -> None:
    root = tmp_path / "UCSDped1"
    write_frames(root / "Train" / "Train001", 2, ".tif")
    write_frames(root / "Test" / "Test001", 6, ".tif")
    write_frames(root / "Test" / "Test002", 6, ".tif")  # the .m says frames 6:7: past its end
    write_frames(root / "Test" / "Test003", 9, ".tif")
    (root / "Test" / "UCSDped1.m").write_text(UCSD_M)
    with pytest.raises(DatasetLayoutError, match=r"video test_02: anomalous interval 6\.\.7 \(1-based\).*6 frames"):
        get_adapter("ped1", root).videos("test")
    (root / "Test" / "UCSDped1.m").write_text(UCSD_M.replace("[8];", "[8];\nTestVideoFile{end+1}.gt_frame = [1];"))
    with pytest.raises(DatasetLayoutError, match="4 gt_frame lines but 3 test video folders"):
        get_adapter("ped1", root).videos("test")


def test_ped2_frame_redistribution_with_gt_cell(tmp_path: Path) -> None:
    root = tmp_path / "ped2"
    write_frames(root / "training" / "frames" / "01", 3, width=0)
    write_frames(root / "testing" / "frames" / "01", 10, width=0)
    write_frames(root / "testing" / "frames" / "02", 7, width=0)
    gt = np.empty((1, 2), dtype=object)
    gt[0, 0] = np.array([[2, 8], [4, 10]])  # two columns: frames 2..4 and 8..10, 1-based
    gt[0, 1] = np.array([[7], [7]])
    scipy.io.savemat(root / "ped2.mat", {"gt": gt})
    records = get_adapter("ped2", root).videos("test")
    assert summary(records) == [
        ("test_01", "test", "01", mask(10, (1, 3), (7, 9))),
        ("test_02", "test", "02", mask(7, (6, 6))),
    ]


def test_avenue_videos_with_label_masks(tmp_path: Path) -> None:
    root = tmp_path / "avenue"
    write_video(root / "training_videos" / "01.avi", 5)
    write_video(root / "testing_videos" / "01.avi", 6)
    write_video(root / "testing_videos" / "02.avi", 4)
    masks_dir = root / "ground_truth_demo" / "testing_label_mask"
    masks_dir.mkdir(parents=True)
    for i, anomalous in ((1, {2, 3}), (2, set())):
        n = 6 if i == 1 else 4
        vol = np.empty((1, n), dtype=object)
        for f in range(n):
            vol[0, f] = np.zeros((3, 4), np.uint8)
            if f in anomalous:
                vol[0, f][1, 2] = 1  # a single pixel makes the frame anomalous
        scipy.io.savemat(masks_dir / f"{i}_label.mat", {"volLabel": vol})
    adapter = get_adapter("avenue", root)
    assert summary(adapter.videos("train")) == [("train_01", "train", "01.avi", None)]
    assert summary(adapter.videos("test")) == [
        ("test_01", "test", "01.avi", mask(6, (2, 3))),
        ("test_02", "test", "02.avi", [0] * 4),
    ]
    # A mask file with a different frame count than its video is reported by video name.
    vol = np.empty((1, 5), dtype=object)
    vol[0, :] = [np.zeros((3, 4), np.uint8)] * 5
    scipy.io.savemat(masks_dir / "2_label.mat", {"volLabel": vol})
    with pytest.raises(DatasetLayoutError, match=r"video test_02: .*2_label\.mat has 5 labels but the video has 4"):
        adapter.videos("test")


def test_avenue_frames_with_avenue_mat_vectors_and_intervals(tmp_path: Path) -> None:
    root = tmp_path / "avenue"
    write_frames(root / "training" / "frames" / "01", 2, width=4)
    write_frames(root / "testing" / "frames" / "01", 5, width=4)
    write_frames(root / "testing" / "frames" / "02", 4, width=4)
    gt = np.empty((1, 2), dtype=object)
    gt[0, 0] = np.array([[0, 1, 1, 0, 1]], np.uint8)  # a per-frame vector
    gt[0, 1] = np.array([[2], [3]])  # one interval, 1-based
    scipy.io.savemat(root / "avenue.mat", {"gt": gt})
    assert summary(get_adapter("avenue", root).videos("test")) == [
        ("test_01", "test", "01", [0, 1, 1, 0, 1]),
        ("test_02", "test", "02", mask(4, (1, 2))),
    ]


def test_shanghaitech_videos_frames_and_npy_masks(tmp_path: Path) -> None:
    root = tmp_path / "shanghaitech"
    write_video(root / "training" / "videos" / "01_001.avi", 7)
    write_video(root / "training" / "videos" / "02_001.avi", 3)
    write_frames(root / "testing" / "frames" / "01_0014", 5)
    write_frames(root / "testing" / "frames" / "01_0015", 3)
    (root / "testing" / "test_frame_mask").mkdir(parents=True)
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy", np.array([0, 0, 1, 1, 0]))
    np.save(root / "testing" / "test_frame_mask" / "01_0015.npy", np.zeros(3, np.int64))
    adapter = get_adapter("shanghaitech", root)
    train = adapter.videos("train")
    assert [(r.video_id, frame_count(r.source)) for r in train] == [("01_001", 7), ("02_001", 3)]
    assert summary(adapter.videos("test")) == [
        ("01_0014", "test", "01_0014", [0, 0, 1, 1, 0]),
        ("01_0015", "test", "01_0015", [0, 0, 0]),
    ]
    np.save(root / "testing" / "test_frame_mask" / "01_0015.npy", np.zeros(4))
    with pytest.raises(DatasetLayoutError, match=r"video 01_0015: .*01_0015\.npy has 4 labels but the video has 3"):
        adapter.videos("test")


def test_ubnormal_one_class_split_and_tracks(tmp_path: Path) -> None:
    root = tmp_path / "ubnormal"
    write_video(root / "Scene1" / "normal_scene_1_scenario_1.mp4", 4)
    write_video(root / "Scene1" / "abnormal_scene_1_scenario_2.mp4", 9)  # abnormal training video: unused
    write_video(root / "Scene2" / "normal_scene_2_scenario_3.mp4", 5)
    write_video(root / "Scene2" / "abnormal_scene_2_scenario_4.mp4", 10)
    tracks = root / "Scene2" / "abnormal_scene_2_scenario_4_annotations" / "abnormal_scene_2_scenario_4_tracks.txt"
    tracks.parent.mkdir()
    tracks.write_text("1,2,4\n2,3,5\n3,8,9\n")  # overlapping tracks 2..4 and 3..5, then 8..9
    (root / "scripts").mkdir()
    (root / "scripts" / "normal_training_video_names.txt").write_text("normal_scene_1_scenario_1.mp4\n")
    (root / "scripts" / "normal_test_video_names.txt").write_text("normal_scene_2_scenario_3\n")
    (root / "scripts" / "abnormal_test_video_names.txt").write_text("abnormal_scene_2_scenario_4\n")
    adapter = get_adapter("ubnormal", root)
    assert summary(adapter.videos("train")) == [
        ("normal_scene_1_scenario_1", "train", "normal_scene_1_scenario_1.mp4", None)
    ]
    assert summary(adapter.videos("test")) == [
        ("normal_scene_2_scenario_3", "test", "normal_scene_2_scenario_3.mp4", [0] * 5),
        ("abnormal_scene_2_scenario_4", "test", "abnormal_scene_2_scenario_4.mp4", mask(10, (2, 5), (8, 9))),
    ]


def test_ucf_crime_one_class_split_and_temporal_annotation(tmp_path: Path) -> None:
    root = tmp_path / "ucf"
    write_video(root / "Training-Normal-Videos-Part-1" / "Normal_Videos001_x264.mp4", 3)
    write_video(root / "Training-Normal-Videos-Part-2" / "Normal_Videos002_x264.mp4", 4)
    write_video(root / "Anomaly-Videos-Part-1" / "Abuse" / "Abuse028_x264.mp4", 12)
    write_video(root / "Anomaly-Videos-Part-1" / "Abuse" / "Abuse001_x264.mp4", 5)  # training anomaly: unused
    write_video(root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4", 6)
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  2  4  7  9\nNormal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1\n"
    )
    adapter = get_adapter("ucf_crime", root)
    assert [r.video_id for r in adapter.videos("train")] == ["Normal_Videos001_x264", "Normal_Videos002_x264"]
    assert summary(adapter.videos("test")) == [
        ("Abuse028_x264", "test", "Abuse028_x264.mp4", mask(12, (2, 4), (7, 9))),
        ("Normal_Videos_003_x264", "test", "Normal_Videos_003_x264.mp4", [0] * 6),
    ]
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  2  40  -1  -1\n"
    )
    with pytest.raises(DatasetLayoutError, match=r"video Abuse028_x264: anomalous interval 2\.\.40"):
        adapter.videos("test")


def test_generic_folder_with_videos_frames_and_labels_csv(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    write_video(root / "train" / "walk.mp4", 5)
    write_frames(root / "train" / "walk2", 3)
    write_video(root / "test" / "run.mp4", 8)
    write_frames(root / "test" / "still", 4)
    (root / "labels.csv").write_text("video_id,start_frame,end_frame\nrun,1,2\nrun,6,7\n")
    adapter = get_adapter("folder", root)
    assert summary(adapter.videos("train")) == [("walk", "train", "walk.mp4", None), ("walk2", "train", "walk2", None)]
    assert summary(adapter.videos("test")) == [
        ("run", "test", "run.mp4", mask(8, (1, 2), (6, 7))),
        ("still", "test", "still", [0] * 4),
    ]
    (root / "labels.csv").write_text("video_id,start_frame,end_frame\nrun,6,8\n")
    with pytest.raises(
        DatasetLayoutError, match=r"video run: anomalous interval 6\.\.8 \(0-based\) does not fit its 8"
    ):
        adapter.videos("test")
    (root / "labels.csv").write_text("video,start,end\n")
    with pytest.raises(DatasetLayoutError, match=r"labels\.csv: header must be"):
        adapter.videos("test")
    write_frames(root / "test" / "walk", 2)
    with pytest.raises(DatasetLayoutError, match=r"in both train/ and test/: \['walk'\]"):
        adapter.videos("train")


def test_unknown_dataset_and_missing_root_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'ped3'"):
        get_adapter("ped3", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_adapter("ped2", tmp_path / "nowhere")
    with pytest.raises(DatasetLayoutError, match="missing folder"):
        get_adapter("shanghaitech", tmp_path).videos("test")
