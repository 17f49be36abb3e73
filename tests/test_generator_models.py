"""Generator models: pose guider, context encoder, temporal layers, reference attention (+ End2End-M and IMG
capture), and the AnimateAnyone-size (SD-1.5) configuration on the meta device."""

import pytest
import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from diffusers.models.attention_processor import Attention

from generator_fixtures import make_components, one_thread  # noqa: F401 (one_thread: autouse)
from pipelines.models import (ANIMATE_ANYONE, TEST, ContextEncoder, MixDenoiser, PoseGuider, build_components,
                              count_parameters)
from pipelines.models.context import slot_images
from pipelines.models.img import img_loss_from_captures
from pipelines.models.reference_attention import (ReferenceFeatures, ReferenceReadProcessor, ReferenceState,
                                                  self_attention_layers)
from pipelines.models.temporal import motion_placement
from pipelines.pose.palette import palette_array


@pytest.fixture(scope="module")
def parts():
    c = make_components("end2end")
    return c, MixDenoiser(c["unet"], c["reference_net"], c["pose_guider"], c["motion_adapter"],
                          c["reference_guider"])


def inputs(c, B=1, F=4, R=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = c["context_encoder"].config.context_dim
    return dict(sample=torch.randn(B, 4, F, 16, 16, generator=g), context=torch.randn(B, 3, D, generator=g),
                ref_latents=torch.randn(R, 4, 16, 16, generator=g), ref_guidance=torch.rand(R, 3, 64, 64, generator=g) * 2 - 1,
                ieg=torch.rand(B, F, 3, 64, 64, generator=g) * 2 - 1)


def run(den, x, ref=True, **kw):
    reference = den.encode_reference(x["ref_latents"], x["context"][:x["ref_latents"].shape[0]], x["ref_guidance"]) if ref else None
    return den(x["sample"], 500, x["context"], reference, den.encode_pose(x["ieg"]), **kw)


# ---- pose guider ---------------------------------------------------------------------------------------
def test_pose_guider_starts_at_zero_and_reaches_latent_resolution():
    g = PoseGuider(embedding_channels=32, block_out_channels=(16, 32, 64))
    out = g(torch.rand(2, 3, 128, 128) * 2 - 1)
    assert out.shape == (2, 32, 32, 32) and g.downscale == 4
    assert out.abs().max().item() == 0.0


# ---- context ----------------------------------------------------------------------------------------
def test_context_tokens_carry_slot_colours_and_accept_cce_tokens():
    enc = ContextEncoder(context_dim=32, tokens_per_slot=4, image_size=32, image_channels=(8, 16)).eval()
    slots = torch.tensor([[0, 1, 2]])
    ctx = enc(slots)                                                   # zeros + colour
    assert ctx.shape == (1, 12, 32)
    # identical identity tokens: only the slot colour tells slots apart, and it does
    per_slot = ctx.view(1, 3, 4, 32)
    assert not torch.allclose(per_slot[:, 0], per_slot[:, 1])
    expected = enc.colour_embed(torch.from_numpy(palette_array())[slots]) [:, :, None] + enc.token_position
    assert torch.allclose(per_slot, expected)
    learned = torch.randn(1, 3, 4, 32)
    with_tokens = enc(slots, slot_tokens=learned).view(1, 3, 4, 32)
    assert torch.allclose(with_tokens - per_slot, learned, atol=1e-6)
    words = torch.randn(1, 5, 32)
    assert torch.equal(enc(slots, word_tokens=words)[:, 12:], words)
    padded = enc(slots, slot_mask=torch.tensor([[True, True, False]])).view(1, 3, 4, 32)
    assert padded[:, 2].abs().max().item() == 0.0
    imgs = enc(slots, slot_images=torch.rand(1, 3, 3, 48, 48) * 2 - 1)
    assert imgs.shape == (1, 12, 32) and not torch.allclose(imgs, ctx)
    with pytest.raises(ValueError, match="slot_tokens"):
        enc(slots, slot_tokens=torch.randn(1, 3, 2, 32))
    with pytest.raises(ValueError, match="slots"):
        enc(torch.tensor([[0, 12]]))


def test_slot_images_crop_to_the_mask_and_keep_aspect():
    img = torch.full((1, 3, 40, 40), 0.5)
    masks = torch.zeros(1, 2, 40, 40, dtype=torch.bool)
    masks[0, 0, 10:30, 5:15] = True                                   # 20 tall, 10 wide
    img[0, :, 10:30, 5:15] = 0.25
    out = slot_images(img, masks, 20)
    assert out.shape == (1, 2, 3, 20, 20)
    filled = (out[0, 0, 0] > -1).float()
    assert filled.sum().item() == pytest.approx(200, abs=20)         # 20 × 10 after letterboxing
    assert filled[:, :5].sum() == 0 and filled[:, 15:].sum() == 0    # centred, aspect kept
    assert torch.allclose(out[0, 0, :, 5:15, 6:14], torch.tensor(0.25))
    assert out[0, 1].eq(-1).all()                                   # empty (padding) slot: black


# ---- temporal layers ----------------------------------------------------------------------------------
def test_motion_modules_sit_after_the_last_layers_of_their_blocks():
    c = build_components(TEST)
    names = [n for n, _, _ in motion_placement(c["unet"], c["motion_adapter"])]
    assert names == ["down_blocks.1.attentions.0", "down_blocks.2.attentions.0", "up_blocks.0.attentions.0",
                     "up_blocks.0.attentions.1", "up_blocks.1.attentions.0", "up_blocks.1.attentions.1",
                     "up_blocks.2.resnets.1"]


def test_temporal_layers_mix_frames_and_start_as_identity():
    fresh = build_components(TEST)                   # zero-initialised motion modules
    den = MixDenoiser(fresh["unet"], fresh["reference_net"], fresh["pose_guider"], fresh["motion_adapter"],
                      fresh["reference_guider"])
    x = inputs(fresh, F=4)
    with torch.no_grad():
        a = run(den, x).sample
        x2 = dict(x, sample=x["sample"].clone())
        x2["sample"][:, :, 3] += 1.0                                  # change the last frame only
        b = run(den, x2).sample
        assert torch.equal(a[:, :, 0], b[:, :, 0])                   # fresh: frames independent
        awake = make_components()
        den2 = MixDenoiser(awake["unet"], awake["reference_net"], awake["pose_guider"], awake["motion_adapter"],
                           awake["reference_guider"])
        a, b = run(den2, x).sample, run(den2, x2).sample
        assert (a[:, :, 0] - b[:, :, 0]).abs().max() > 1e-5           # trained: frame 0 sees frame 3


# ---- reference attention --------------------------------------------------------------------------------
def test_reference_changes_output_and_dropped_reference_equals_none(parts):
    c, den = parts
    x = inputs(c)
    with torch.no_grad():
        base = run(den, x).sample
        other = run(den, dict(x, ref_latents=x["ref_latents"] + 1)).sample
        assert (base - other).abs().max() > 1e-4
        dropped = run(den, x, ref_index=torch.tensor([-1])).sample
        none = run(den, x, ref=False).sample
        assert torch.allclose(dropped, none, atol=1e-6)


def test_classifier_free_batch_matches_separate_runs_and_kv_cache_changes_nothing(parts):
    c, den = parts
    x = inputs(c)
    with torch.no_grad():
        reference = den.encode_reference(x["ref_latents"], x["context"], x["ref_guidance"])
        pose = den.encode_pose(x["ieg"])
        null = torch.zeros_like(x["context"])
        cond = den(x["sample"], 400, x["context"], reference, pose, ref_index=torch.tensor([0])).sample
        uncond = den(x["sample"], 400, null, reference, pose, ref_index=torch.tensor([-1])).sample
        both = den(torch.cat([x["sample"]] * 2), 400, torch.cat([null, x["context"]]), reference,
                   torch.cat([pose] * 2), ref_index=torch.tensor([-1, 0])).sample
        assert torch.allclose(both[:1], uncond, atol=1e-5) and torch.allclose(both[1:], cond, atol=1e-5)
        with den.cached_reference():
            first = den(x["sample"], 400, x["context"], reference, pose).sample
            again = den(x["sample"], 300, x["context"], reference, pose).sample
        assert torch.allclose(first, cond, atol=1e-6)
        assert torch.allclose(again, den(x["sample"], 300, x["context"], reference, pose).sample, atol=1e-6)


def test_reference_net_writes_every_layer_the_denoiser_reads(parts):
    c, den = parts
    x = inputs(c)
    reference = den.encode_reference(x["ref_latents"], x["context"], x["ref_guidance"])
    assert set(reference.hidden) == set(den.reference_layers) == set(self_attention_layers(c["unet"]))
    assert reference.latent_size == (16, 16)
    with pytest.raises(ValueError, match="reference guidance"):
        den.encode_reference(x["ref_latents"], x["context"], None)


def test_end2end_m_mask_restricts_each_region_to_its_own_slot():
    # one attention layer on a 2×2 grid; generated tokens 0, 2 are slot 0's region, 1, 3 slot 1's;
    # reference tokens 0, 2 belong to slot 0, token 1 to slot 1, token 3 is background
    torch.manual_seed(0)
    attn = Attention(query_dim=8, heads=2, dim_head=4)
    st = ReferenceState()
    attn.set_processor(ReferenceReadProcessor(st, "layer"))
    regions = torch.zeros(1, 1, 2, 2, 2, dtype=torch.bool)
    regions[0, 0, 0, :, 0] = True
    regions[0, 0, 1, :, 1] = True
    ref_regions = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    ref_regions[0, 0, :, 0] = True
    ref_regions[0, 1, 0, 1] = True
    hidden = torch.randn(1, 4, 8)
    ref = torch.randn(1, 4, 8)

    def out(ref_tokens):
        st.begin_read(ReferenceFeatures({"layer": ref_tokens}, (2, 2)), torch.tensor([0]), 1, (2, 2), regions,
                      ref_regions)
        try:
            return attn(hidden)
        finally:
            st.end()

    st.begin_read(ReferenceFeatures({"layer": ref}, (2, 2)), torch.tensor([0]), 1, (2, 2), regions, ref_regions)
    allowed = st.allowed((2, 2), (2, 2), torch.tensor([0]))[0, 0]
    st.end()
    assert allowed[:, :4].all()                                        # own frame: always
    assert allowed[:, 4 + 3].all()                                     # background reference token: always
    assert allowed[0, 4 + 0] and allowed[0, 4 + 2] and not allowed[0, 4 + 1]      # slot 0 region
    assert allowed[1, 4 + 1] and not allowed[1, 4 + 0] and not allowed[1, 4 + 2]  # slot 1 region
    base = out(ref)
    changed = ref.clone()
    changed[0, 1] += 5.0                                               # slot 1's reference token
    after = out(changed)
    assert torch.allclose(base[0, [0, 2]], after[0, [0, 2]], atol=1e-6)   # slot 0's region does not see it
    assert (base[0, [1, 3]] - after[0, [1, 3]]).abs().max() > 1e-3       # slot 1's region does


def test_img_capture_returns_layer_projections_and_trains(parts):
    c, den = parts
    x = inputs(c, B=2, F=2)
    layer = den.reference_layers[0]
    module = dict(c["unet"].named_modules())[layer]
    seen = {}
    handle = module.register_forward_hook(lambda m, args, out: seen.setdefault("h", args[0]))
    try:
        out = run(den, x, ref_index=torch.tensor([0, -1]), capture_layers=[layer])
    finally:
        handle.remove()
    cap = out.captures[layer]
    heads, dim = module.heads, module.inner_dim // module.heads
    assert cap.size == (8, 8) and cap.ref_size == (8, 8) and cap.num_frames == 2
    assert cap.query.shape == (4, heads, 64, dim) and cap.key.shape == (1, heads, 64, dim)
    q = module.to_q(seen["h"]).view(4, 64, heads, dim).transpose(1, 2)
    assert torch.allclose(cap.query, q, atol=1e-6)
    assert list(out.captures) == [layer]
    masks = torch.zeros(2, 2, 2, 64, 64, dtype=torch.bool)
    masks[..., 0, :, :32] = True
    masks[..., 1, :, 32:] = True
    loss, report = img_loss_from_captures(out.captures, masks, masks[0, :1, :, :, :].squeeze(0)[None])
    assert 0.0 <= loss.item() <= 1.0 and set(report) == {layer}
    loss.backward()
    assert module.to_q.weight.grad is not None and module.to_q.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="capture_layers"):
        run(den, x, capture_layers=["nope.attn1"])


# ---- SD-1.5 / AnimateAnyone size ---------------------------------------------------------------------------
def test_animate_anyone_size_builds_on_meta_device(capsys):
    comps = build_components(ANIMATE_ANYONE, device="meta")
    counts = count_parameters(comps)
    with capsys.disabled():
        print("\nAnimateAnyone-size parameters (meta device):",
              {k: f"{v / 1e6:.1f}M" for k, v in counts.items()})
    assert all(p.is_meta for p in comps["unet"].parameters())
    assert counts["unet"] == 859_520_964 == counts["reference_net"]       # SD-1.5's UNet
    assert counts["vae"] == 83_653_863                                    # SD's VAE
    # the motion adapter is diffusers' AnimateDiff MotionAdapter and sits where UNetMotionModel puts it
    with torch.device("meta"):
        ref = MotionAdapter(block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2,
                            motion_max_seq_length=24)
        motion_unet = UNetMotionModel.from_unet2d(comps["unet"], ref, load_weights=False)
    assert counts["motion_adapter"] == sum(p.numel() for p in ref.parameters())
    placed = motion_placement(comps["unet"], comps["motion_adapter"])
    expected = [n.rsplit(".motion_modules", 1)[0] for n, _ in motion_unet.named_modules()
                if n.endswith(tuple(f"motion_modules.{j}" for j in range(3)))]
    assert len(placed) == len(expected) == 21
    den = MixDenoiser(comps["unet"], comps["reference_net"], comps["pose_guider"], comps["motion_adapter"],
                      comps["reference_guider"])
    assert len(den.reference_layers) == 16
    assert isinstance(comps["unet"], UNet2DConditionModel)


# ---- the trainer's forward (the hand-off recipe in docs/GENERATOR.md) ---------------------------------------
def test_training_forward_reaches_every_trainable_module():
    from diffusers import DDPMScheduler

    c = make_components("end2end-m")
    for m in c.values():
        if isinstance(m, torch.nn.Module):
            m.train()
    den = MixDenoiser(c["unet"], c["reference_net"], c["pose_guider"], c["motion_adapter"], c["reference_guider"])
    B, F, S, H = 2, 3, 5, 64
    g = torch.Generator().manual_seed(0)
    reference = torch.rand(B, 3, H, H, generator=g) * 2 - 1            # collate(): images in [-1, 1]
    ref_masks = torch.zeros(B, S, H, H)
    ref_masks[:, 0, 20:60, 4:28] = 1
    ref_masks[:, 1, 20:60, 36:60] = 1                                  # slots 2..4 are padding
    target_masks = ref_masks[:, None].repeat(1, F, 1, 1, 1).flip(-1)   # the two characters swapped places
    target = torch.rand(B, F, 3, H, H, generator=g) * 2 - 1
    pose = torch.rand(B, F, 3, H, H, generator=g) * 2 - 1
    ref_pose = torch.rand(B, 3, H, H, generator=g) * 2 - 1
    valid = torch.tensor([[True, True, False, False, False]] * B)

    vae, sf = c["vae"], c["vae"].config.scaling_factor
    with torch.no_grad():
        latents = vae.encode(target.flatten(0, 1)).latent_dist.sample(g) * sf
        latents = latents.unflatten(0, (B, F)).transpose(1, 2)             # (B, C, F, h, w)
        ref_latents = vae.encode(reference).latent_dist.mode() * sf
    enc = c["context_encoder"]
    context = enc(torch.arange(S).expand(B, S), slot_images=slot_images(reference, ref_masks, enc.config.image_size),
                  slot_mask=valid)
    dropped = torch.tensor([False, True])                              # CFG dropout: no reference, null context
    context = torch.where(dropped[:, None, None], enc.null_context(context), context)
    ref_index = torch.where(dropped, -1, torch.arange(B))
    noise = torch.randn(latents.shape, generator=g)
    sched = DDPMScheduler.from_config(c["scheduler"].config)
    t = torch.tensor([100, 700])
    noisy = sched.add_noise(latents, noise, t)
    ref = den.encode_reference(ref_latents, context, ref_pose)
    out = den(noisy, t, context, ref, den.encode_pose(pose), ref_index=ref_index, regions=target_masks > 0.5,
              ref_regions=ref_masks > 0.5, capture_layers=den.reference_layers[:2])
    img, report = img_loss_from_captures(out.captures, target_masks, ref_masks)
    loss = torch.nn.functional.mse_loss(out.sample, noise) + 0.2 * img
    loss.backward()
    assert out.sample.shape == noise.shape and set(report) == set(den.reference_layers[:2])
    for name in ("unet", "reference_net", "pose_guider", "reference_guider", "motion_adapter", "context_encoder"):
        grads = [p.grad for p in c[name].parameters() if p.grad is not None]
        assert grads and sum(float(gr.abs().sum()) for gr in grads) > 0, name
