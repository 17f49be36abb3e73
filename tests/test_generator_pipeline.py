"""MixPipeline on a tiny seeded model: shapes, determinism, save/load, once-per-generation reference, the
slot↔track assignment, bad inputs, NaN detection, sliding windows, scenes, schedulers and callbacks."""

import json
import warnings

import numpy as np
import pytest
import torch

from generator_fixtures import SIZE, make_components, one_thread, static_keypoints  # noqa: F401
from pipelines.mix import MixPipeline, temporal_windows, window_weights
from pipelines.mix.__main__ import init_model
from pipelines.pose.ieg import OPENPOSE_LIMB_COLORS
from pipelines.pose.palette import PALETTE
from pipelines.scene import Scene
from pipelines.world import World

FRAMES = 8



def make_pipe(mode="end2end", **kw):
    c = make_components(mode)
    pipe = MixPipeline(**c, plain_skeleton=mode == "plain", masked_reference_attention=mode == "end2end-m", **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe():
    return make_pipe()


@pytest.fixture(scope="module")
def clip():
    return World(5, size=SIZE, frames=FRAMES).clip(2, n_characters=2, motion="swap")


def args(clip, **kw):
    base = dict(reference_image=clip.frames[0], reference_masks=clip.masks[0], keypoints=clip.keypoints,
                width=SIZE, height=SIZE, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    base.update(kw)
    return base


def count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


# ---- shapes, determinism, save/load ----------------------------------------------------------------------
def test_shapes_and_determinism_with_a_fixed_generator(pipe, clip):
    out = pipe(**args(clip))
    assert out.frames.shape == (FRAMES, SIZE, SIZE, 3) and out.frames.dtype == np.uint8
    assert out.guidance_frames.shape == (FRAMES, SIZE, SIZE, 3)
    assert out.reference_sheet.shape == (SIZE, SIZE, 3) and out.reference_guidance.shape == (SIZE, SIZE, 3)
    assert out.reference_masks.shape == (2, SIZE, SIZE) and out.assignment == [0, 1]
    assert out.frames.std() > 1
    again = pipe(**args(clip))
    assert np.array_equal(out.frames, again.frames)
    other = pipe(**args(clip, generator=torch.Generator().manual_seed(1)))
    assert not np.array_equal(out.frames, other.frames)
    frames, guidance, sheet, ref_guidance = pipe(**args(clip), return_dict=False)
    assert np.array_equal(frames, out.frames) and np.array_equal(guidance, out.guidance_frames)
    pt = pipe(**args(clip), output_type="pt").frames
    assert pt.shape == (FRAMES, 3, SIZE, SIZE) and 0 <= pt.min() and pt.max() <= 1
    lat = pipe(**args(clip), output_type="latent").frames
    assert lat.shape == (1, 4, FRAMES, SIZE // 4, SIZE // 4)


def test_save_load_round_trip_gives_identical_frames(pipe, clip, tmp_path):
    pipe.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_dir()) == sorted(
        ["vae", "unet", "reference_net", "pose_guider", "reference_guider", "motion_adapter", "context_encoder",
         "scheduler"])
    assert not list((tmp_path / "m").rglob("*.bin"))                   # safetensors only
    loaded = MixPipeline.from_pretrained(tmp_path / "m")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.mode == pipe.mode == "end2end"
    assert np.array_equal(pipe(**args(clip)).frames, loaded(**args(clip)).frames)


def test_fp16_checkpoint_loads_as_fp32(tmp_path, clip):
    init_model(tmp_path / "tiny16", seed=0, size="test", mode="end2end-m")
    from safetensors import safe_open
    files = list((tmp_path / "tiny16").rglob("*.safetensors"))
    assert len(files) == 7
    for f in files:
        with safe_open(f, "pt") as st:
            assert {st.get_slice(k).get_dtype() for k in st.keys()} == {"F16"}, f
    loaded = MixPipeline.from_pretrained(tmp_path / "tiny16", dtype=torch.float32)
    assert loaded.unet.dtype == torch.float32 and loaded.mode == "end2end-m"
    loaded.set_progress_bar_config(disable=True)
    out = loaded(**args(clip, num_inference_steps=1))
    assert out.frames.shape == (FRAMES, SIZE, SIZE, 3)


# ---- once per generation ----------------------------------------------------------------------------------
def test_reference_net_runs_once_per_generation(pipe, clip):
    ref_calls, h1 = count_calls(pipe.reference_net)
    unet_calls, h2 = count_calls(pipe.unet)
    guider_calls, h3 = count_calls(pipe.pose_guider)
    try:
        kp = np.concatenate([clip.keypoints, clip.keypoints[::-1], clip.keypoints])      # 24 frames: 2 windows
        pipe(**args(clip, keypoints=kp, num_inference_steps=3))
    finally:
        for h in (h1, h2, h3):
            h.remove()
    assert len(ref_calls) == 1 and len(guider_calls) == 1
    assert len(unet_calls) == 3 * 2                     # steps × windows (CFG halves share one batch)


# ---- the slot ↔ track assignment -----------------------------------------------------------------------------
def test_permuting_the_assignment_permutes_guidance_colours(pipe, clip):
    kp = static_keypoints(FRAMES)                        # track 0 stands left, track 1 right
    a = pipe(**args(clip, keypoints=kp, assignment=[0, 1]))
    b = pipe(**args(clip, keypoints=kp, assignment=[1, 0]))

    def has(img, colour):
        return bool((img == np.array(colour, np.uint8)).all(-1).any())

    left, right = slice(0, SIZE // 2), slice(SIZE // 2, SIZE)
    g, h = a.guidance_frames[0], b.guidance_frames[0]
    assert has(g[:, left], PALETTE[0]) and has(g[:, right], PALETTE[1])
    assert not has(g[:, left], PALETTE[1]) and not has(g[:, right], PALETTE[0])
    assert has(h[:, left], PALETTE[1]) and has(h[:, right], PALETTE[0])
    assert not has(h[:, left], PALETTE[0]) and not has(h[:, right], PALETTE[1])
    assert b.assignment == [1, 0]
    assert not np.array_equal(a.frames, b.frames)        # the model reads the colours


def test_plain_skeleton_mode_draws_no_identity_colours(clip):
    plain = make_pipe("plain")
    out = plain(**args(clip, keypoints=static_keypoints(FRAMES), num_inference_steps=1))
    colours = {tuple(c) for c in out.guidance_frames[0].reshape(-1, 3)}
    assert plain.mode == "plain" and not colours & set(PALETTE[:2])
    assert colours & set(OPENPOSE_LIMB_COLORS)


# ---- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda c: {"num_frames": FRAMES + 2}, "num_frames: 10 does not match keypoints"),
    (lambda c: {"reference_masks": c.masks[0][:, :32, :32]}, "reference_masks: masks are 32×32"),
    (lambda c: {"reference_masks": c.masks[0][:0]}, "reference_masks: zero characters"),
    (lambda c: {"reference_image": None, "reference_masks": None, "characters": []}, "characters: zero characters"),
    (lambda c: {"reference_image": None, "reference_masks": None,
                "characters": [(c.frames[0], c.masks[0, 0][:10])]}, r"characters\[0\]: mask"),
    (lambda c: {"reference_masks": np.concatenate([c.masks[0], c.masks[0][:1]])},
     "characters: 3 characters but keypoints have only 2 tracks"),
    (lambda c: {"scheduler": "lms"}, "scheduler: unknown scheduler 'lms'"),
    (lambda c: {"assignment": [1, 1]}, "assignment"),
    (lambda c: {"keypoints": c.keypoints[..., :2]}, "keypoints: expected shape"),
    (lambda c: {"width": 72}, "width: 72 must be a positive multiple of 16"),
    (lambda c: {"window_overlap": 16}, "window_overlap"),
    (lambda c: {"latents": torch.zeros(1, 4, 3, 16, 16)}, "latents: expected shape"),
    (lambda c: {"callback_on_step_end_tensor_inputs": ["pose"]}, "callback_on_step_end_tensor_inputs"),
    (lambda c: {"reference_image": c.frames[0][:60]}, "reference_masks: masks are 64×64"),
])
def test_bad_inputs_give_clear_errors(pipe, clip, change, message):
    with pytest.raises(ValueError, match=message):
        pipe(**args(clip, **change(clip)))


def test_end2end_m_without_a_reference_guider_is_refused():
    from pipelines.models import TEST, build_components
    with pytest.raises(ValueError, match="masked_reference_attention: End2End-M builds on End2End"):
        MixPipeline(**build_components(TEST, mode="ieg"), masked_reference_attention=True)


def test_scene_and_explicit_arguments_do_not_mix(pipe, clip):
    scene = Scene.load("assets/scenes/pip-dora-swap.json")
    with pytest.raises(ValueError, match="keypoints: the scene already says this"):
        pipe(scene, keypoints=clip.keypoints)


# ---- NaN ----------------------------------------------------------------------------------------------------
def test_non_finite_latents_are_reported_with_their_step(clip):
    broken = make_pipe()
    with torch.no_grad():
        broken.unet.conv_out.bias[0] = float("nan")
    with pytest.raises(FloatingPointError, match="step 1 of 2"):
        broken(**args(clip))
    ok = make_pipe()

    def poison(p, i, t, tensors):
        return {"latents": tensors["latents"] * float("inf")} if i == 1 else {}

    with pytest.raises(FloatingPointError, match="step 2 of 3"):
        ok(**args(clip, num_inference_steps=3), callback_on_step_end=poison)


# ---- sliding windows -------------------------------------------------------------------------------------------
def test_windows_cover_the_clip_and_weights_blend_overlaps():
    assert temporal_windows(64, 16, 4) == [(0, 16), (12, 28), (24, 40), (36, 52), (48, 64)]
    assert temporal_windows(16, 16, 4) == [(0, 16)]
    assert temporal_windows(20, 16, 4) == [(0, 16), (4, 20)]             # the last window ends at the end
    wins = temporal_windows(64, 16, 4)
    ws = window_weights(wins, 64)
    total = torch.zeros(64)
    for (s, e), w in zip(wins, ws):
        total[s:e] += w
    assert torch.allclose(total, torch.ones(64))
    assert torch.allclose(ws[0][12:], torch.tensor([4, 3, 2, 1]) / 5)     # linear cross-fade over the overlap
    assert torch.allclose(ws[1][:4], torch.tensor([1, 2, 3, 4]) / 5)


class WindowIndexDenoiser:
    """Predicts, for every frame of a window, the window's start frame — blending is then visible exactly."""
    calls = 0

    def __call__(self, sample, t, context, reference, pose, **kw):
        WindowIndexDenoiser.calls += 1
        start = int(pose[0, 0, 0, 0, 0])
        return type("Out", (), {"sample": torch.full_like(sample, float(start))})()


def test_overlapping_windows_are_blended_deterministically(pipe):
    latents = torch.zeros(1, 4, 28, 4, 4)
    pose = torch.arange(28, dtype=torch.float32)[None, :, None, None, None].expand(1, 28, 1, 1, 1)
    wins = temporal_windows(28, 16, 4)
    pipe._guidance_scale = 1.0
    saved = pipe._denoiser
    pipe._denoiser = WindowIndexDenoiser()
    try:
        WindowIndexDenoiser.calls = 0
        out = pipe.predict_noise(latents, 10, torch.zeros(1, 2, 8), None, pose, None, None, wins,
                                 window_weights(wins, 28))
    finally:
        pipe._denoiser = saved
    per_frame = out[0, 0, :, 0, 0]
    assert WindowIndexDenoiser.calls == 2
    assert torch.allclose(per_frame[:12], torch.zeros(12))
    assert torch.allclose(per_frame[12:16], 12 * torch.tensor([1, 2, 3, 4]) / 5)
    assert torch.allclose(per_frame[16:], torch.full((12,), 12.0))


def test_a_64_frame_clip_runs_in_five_windows(pipe, clip):
    kp = np.concatenate([clip.keypoints] * 8)
    calls, handle = count_calls(pipe.unet)
    try:
        out = pipe(**args(clip, keypoints=kp, num_inference_steps=1, guidance_scale=1.0))
    finally:
        handle.remove()
    assert out.frames.shape == (64, SIZE, SIZE, 3) and len(calls) == 5


# ---- scenes ------------------------------------------------------------------------------------------------------
def scene_doc(**kw):
    doc = {"version": 1, "characters": [{"id": "pip"}, {"id": "dora"}], "motion": {"template": "swap-2"},
           "assignment": [1, 0], "background": {"color": "#406080"}, "width": SIZE, "height": SIZE, "frames": 20,
           "sampler": {"scheduler": "ddim", "steps": 1, "guidance_scale": 2.0}, "seed": 3}
    doc.update(kw)
    return doc


def test_scene_holds_the_last_pose_of_a_short_motion_and_uses_its_settings(pipe):
    scene = Scene.from_dict(scene_doc())
    with pytest.warns(UserWarning, match="holding the last pose"):
        out = pipe(scene)
    assert out.frames.shape == (20, SIZE, SIZE, 3) and out.assignment == [1, 0]
    assert len(out.warnings) == 1 and "16 frames" in out.warnings[0]
    assert np.array_equal(out.guidance_frames[16], out.guidance_frames[19])
    assert (out.reference_sheet[0, 0] == [0x40, 0x60, 0x80]).all()           # the scene's background
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(pipe(scene).frames, out.frames)              # the scene's seed
    short = pipe(Scene.from_dict(scene_doc(frames=12)))
    assert short.frames.shape[0] == 12 and not short.warnings                # longer motions are trimmed


def test_text_motion_needs_a_motion_model(clip):
    scene = Scene.from_dict(scene_doc(motion={"text": "they dance"}, frames=FRAMES))
    with pytest.raises(ValueError, match="motion.text: this model has no text-to-motion model"):
        make_pipe()(scene)

    class Walker:
        def generate_keypoints(self, text, *, prompt, names, num_frames, width, height, generator):
            assert text == "they dance" and names == ["Pip", "Dora"] and (width, height) == (SIZE, SIZE)
            return static_keypoints(num_frames)

    out = make_pipe(motion_model=Walker())(scene)
    assert out.frames.shape == (FRAMES, SIZE, SIZE, 3)


def test_user_characters_from_files(tmp_path, pipe):
    from PIL import Image
    lib = World(0).portrait(World(0).clip(0, n_characters=1).characters[0], size=96)
    Image.fromarray(lib[0]).save(tmp_path / "me.png")
    Image.fromarray((lib[1] * 255).astype(np.uint8)).save(tmp_path / "me-mask.png")
    Image.fromarray((lib[1][:50] * 255).astype(np.uint8)).save(tmp_path / "bad-mask.png")
    doc = scene_doc(characters=[{"name": "Me", "image": "me.png", "mask": "me-mask.png", "style": "cartoon"},
                                {"id": "pip"}], frames=FRAMES)
    (tmp_path / "s.json").write_text(json.dumps(doc))
    out = pipe(Scene.load(tmp_path / "s.json"))
    assert out.reference_masks.shape == (2, SIZE, SIZE)
    doc["characters"][0]["mask"] = "bad-mask.png"
    (tmp_path / "s.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"characters\[0\].mask: .* does not match the image"):
        pipe(Scene.load(tmp_path / "s.json"))


# ---- samplers, callbacks, modes, CCE hook ---------------------------------------------------------------------
def test_schedulers_are_swappable(pipe, clip):
    results = {}
    for name in ("ddim", "dpm++", "euler"):
        results[name] = pipe(**args(clip, scheduler=name, num_inference_steps=3)).frames
    assert not np.array_equal(results["ddim"], results["dpm++"])
    assert not np.array_equal(results["ddim"], results["euler"])
    p = make_pipe()
    p.set_scheduler("dpm++")
    assert type(p.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert p.scheduler.config.algorithm_type == "dpmsolver++"
    assert np.array_equal(p(**args(clip, num_inference_steps=3)).frames, results["dpm++"])


def test_callback_sees_tensors_and_interrupt_stops_the_loop(pipe, clip):
    seen = []

    def stop(p, i, t, tensors):
        seen.append((i, sorted(tensors)))
        p._interrupt = True
        return {}

    pipe(**args(clip, num_inference_steps=4), callback_on_step_end=stop,
         callback_on_step_end_tensor_inputs=["latents", "noise_pred", "context"])
    assert seen == [(0, ["context", "latents", "noise_pred"])]


def test_end2end_m_and_cce_tokens_reach_the_model(clip):
    masked = make_pipe("end2end-m")
    base = masked(**args(clip))
    T, D = masked.context_encoder.tokens_per_slot, masked.context_encoder.config.context_dim
    tokens = torch.randn(1, 2, T, D, generator=torch.Generator().manual_seed(0))
    with_tokens = masked(**args(clip), slot_tokens=tokens)
    assert masked.mode == "end2end-m" and not np.array_equal(base.frames, with_tokens.frames)
    with pytest.raises(ValueError, match="slot_tokens"):
        masked(**args(clip), slot_tokens=tokens[:, :1])
