"""Pose extraction from a driving video: track linking on world ground truth, the missing-weights message,
video limits, detector adapters (a random-weight OpenPose body network runs end to end)."""

import numpy as np
import pytest

from pipelines.pose import extract
from pipelines.pose.extract import (OPENPOSE_FILE, OPENPOSE_REPO, PoseExtractor, PoseWeightsMissing, link_tracks,
                                    read_video, wholebody_to_people)


def _same_visible(a, b):
    vis = a[..., 2] > 0
    return np.allclose(a[vis], b[vis]) and np.array_equal(vis, b[..., 2] > 0)


@pytest.fixture(scope="module")
def swap_clip(world):
    return world.clip(3, characters=["pip", "dora", "zed"], motion="swap", size=192, frames=24)


def test_link_tracks_follows_people_through_a_swap(swap_clip):
    kp = swap_clip.keypoints
    assert swap_clip.swap_pairs, "the clip must contain position swaps"
    rng = np.random.default_rng(0)
    # a detector reports people in any order and drops people it cannot see at all
    people = [f[rng.permutation(len(f))] for f in kp]
    people = [p[(p[..., 2] > 0).any(-1)] for p in people]
    out = link_tracks(people, 192, 192)
    assert out.shape == kp.shape
    first = [t for t in np.argsort(kp[0, :, 1, 0])]          # tracks are numbered left to right at the start
    for r, t in enumerate(first):
        assert _same_visible(out[:, r], np.where(kp[:, t, :, 2:] > 0, kp[:, t], 0)), f"track {r} lost its person"


def test_link_tracks_keeps_the_most_confident_people_and_rejects_empty_clips():
    person = np.zeros((18, 3), np.float32)
    person[1] = (50, 50, 0.9)
    weak = person.copy()
    weak[1] = (150, 50, 0.4)
    out = link_tracks([np.stack([weak, person])], 200, 100, max_tracks=1)
    assert out.shape == (1, 1, 18, 3) and out[0, 0, 1, 0] == 50
    with pytest.raises(ValueError, match="no people were found"):
        link_tracks([np.zeros((0, 18, 3))] * 3, 64, 64)
    with pytest.raises(ValueError, match="max_tracks"):
        link_tracks([person[None]], 64, 64, max_tracks=9)


def test_missing_weights_say_which_files_and_what_instead(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSOVER_ASSETS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(extract, "_cached", lambda repo, f: None)
    with pytest.raises(PoseWeightsMissing) as e:
        PoseExtractor()
    msg = str(e.value)
    assert OPENPOSE_REPO in msg and OPENPOSE_FILE in msg and "motion template" in msg and "OpenPose JSON" in msg
    assert str(tmp_path / "models" / "annotators") in msg
    with pytest.raises(ValueError, match="backend"):
        PoseExtractor(backend="mediapipe")


def test_extractor_with_a_detector_callable_returns_tracks(swap_clip):
    kp = swap_clip.keypoints
    frames = swap_clip.frames
    calls = []

    def detector(frame):
        calls.append(frame.shape)
        k = kp[len(calls) - 1]
        return k[::-1]                                        # reversed order: the tracker must sort it out

    ex = PoseExtractor(detector=detector)
    progress = []
    out = ex(frames, progress=lambda i, n: progress.append((i, n)))
    assert len(calls) == len(frames) and progress[-1] == (len(frames), len(frames))
    assert out.shape == kp.shape
    first = np.argsort(kp[0, :, 1, 0])
    assert all(_same_visible(out[:, r], np.where(kp[:, t, :, 2:] > 0, kp[:, t], 0)) for r, t in enumerate(first))
    with pytest.raises(ValueError, match="frame"):
        ex.detect(np.zeros((8, 8), np.uint8))


def test_read_video_samples_and_refuses_long_videos(tmp_path, swap_clip):
    import imageio.v2 as imageio
    path = tmp_path / "drive.mp4"
    imageio.mimwrite(path, list(swap_clip.frames), fps=24, codec="libx264", macro_block_size=16)   # 1 s at 24 fps
    clip = read_video(path, fps=8, max_seconds=5, max_frames=64, max_side=96)
    assert clip.frames.shape[0] == 8 and clip.frames.shape[1:] == (96, 96, 3)
    assert clip.fps == pytest.approx(8) and clip.duration == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="limit is 0.5 s"):
        read_video(path, max_seconds=0.5)
    bad = tmp_path / "not-a-video.mp4"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="could not be opened"):
        read_video(bad)


def test_wholebody_output_becomes_openpose_18():
    kp = np.arange(2 * 134 * 2, dtype=np.float32).reshape(2, 134, 2)
    sc = np.full((2, 134), 0.9, np.float32)
    sc[1, 4] = 0.1
    people = wholebody_to_people(kp, sc)
    assert people.shape == (2, 18, 3)
    assert np.allclose(people[0, 3, :2], kp[0, 3]) and people[0, 3, 2] == pytest.approx(0.9)
    assert np.all(people[1, 4] == 0)                            # low confidence → not detected


def test_openpose_body_network_loads_safely_and_maps_people(tmp_path):
    """A random-weight OpenPose body network saved in the checkpoint's key layout loads through
    ``torch.load(weights_only=True)``; a checkpoint of something else is refused with a clear message; the
    network's (candidate, subset) output becomes (P, 18, 3) people from an RGB frame."""
    import torch
    bodypose_model = extract._quiet_import("controlnet_aux.open_pose.model").bodypose_model
    torch.manual_seed(0)
    state = {".".join(k.split(".")[1:]): v.half() for k, v in bodypose_model().state_dict().items()}
    torch.save(state, tmp_path / OPENPOSE_FILE)
    ex = PoseExtractor(backend="openpose", weights=tmp_path)
    assert ex.backend == "openpose"
    loaded = ex.detector.body.model.state_dict()
    key = next(iter(loaded))
    assert torch.equal(loaded[key], state[".".join(key.split(".")[1:])].float())
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not an OpenPose body checkpoint"):
        extract.OpenPoseBody(tmp_path / "bad.pth")

    seen = []

    def body(bgr):                       # what controlnet-aux's Body returns: candidates and people rows
        seen.append(bgr)
        candidate = np.array([[10, 20, 0.9, 0], [30, 40, 0.8, 1]], np.float32)
        subset = np.full((1, 20), -1.0)
        subset[0, 0], subset[0, 1] = 0, 1
        return candidate, subset
    ex.detector.body = body
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0] = 255                                           # red in RGB
    people = ex.detect(frame)
    assert seen[0][0, 0].tolist() == [0, 0, 255]                  # the network was given BGR
    assert people.shape == (1, 18, 3)
    assert people[0, 0].tolist() == pytest.approx([10, 20, 0.9]) and people[0, 1].tolist() == pytest.approx([30, 40, 0.8])
    assert np.all(people[0, 2:] == 0)
