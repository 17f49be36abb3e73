"""Every knob of every training stage, in one place, with what it does. The whole config is saved inside
every checkpoint (safetensors metadata and state.json), so a resumed or reproduced run rebuilds exactly
the same model and data stream.

Stages (EverybodyDance's recipe on an AnimateAnyone-style backbone, scaled to this CPU):

    vae        the autoencoder on world frames (reconstruction + KL + edge terms)
    generator  denoising UNet + ReferenceNet + guiders + context encoder on single frames
    temporal   the motion modules on clips (everything else frozen)
    img        identity fine-tuning on single frames: the Table-2 variant chosen by --variant
    motion     text mode's motion model (pipelines/models/motion.py) on world motions and captions
    cce        per-character CCE tokens of the library (identity + behaviour) through the frozen generator
               and motion model, plus the image→behaviour head for new characters
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

STAGES = ("vae", "generator", "temporal", "img", "motion", "cce")
GENERATOR_STAGES = ("vae", "generator", "temporal", "img")      # stages that train a MixPipeline
VARIANTS = ("plain", "ieg", "end2end", "end2end-m", "full")
# Table 2 of EverybodyDance, as switches: (guidance mode of the model, IMG loss on?)
VARIANT_SETTINGS = {
    "plain": ("plain", False),          # plain skeleton fine-tune
    "ieg": ("ieg", False),              # identity-coloured skeletons only
    "end2end": ("end2end", False),      # + slot-tinted reference masks into the ReferenceNet
    "end2end-m": ("end2end-m", False),  # + reference attention restricted to each slot's region
    "full": ("end2end", True),          # + the IMG loss (MQA over multi-scale layers) — the shipped recipe
}
# IMG layers in the order multi-scale matching adds them (MSM-k uses the first k): the two 16×16 layers
# (finest correspondence), then the two 8×8 ones.
MSM_ORDER = (
    "up_blocks.1.attentions.1.transformer_blocks.0.attn1",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1",
    "up_blocks.0.attentions.1.transformer_blocks.0.attn1",
    "down_blocks.2.attentions.0.transformer_blocks.0.attn1",
)


@dataclass
class TrainConfig:
    stage: str = "generator"           # one of STAGES
    variant: str = "full"              # img stage: one of VARIANTS (others ignore it)
    # ---- model ----------------------------------------------------------------------------------------
    init: str = ""                     # pipeline folder to start from ("" = fresh random weights of model_config)
    model_config: str = "tiny"         # fresh models: "tiny" (the embedded model) or "test" (tiny tests)
    mode: str = "plain"                # guidance mode for generator/temporal: plain | ieg | end2end | end2end-m
    appearance_prior: bool = True      # the pose guider also reads the appearance prior (pipelines/pose/prior.py);
                                       # an --init model without it gets the 4 input channels, zero-initialised
    # ---- data (the world, on the fly) ----------------------------------------------------------------
    seed: int = 0                      # world seed and torch seed
    size: int = 128                    # frame size
    clip_frames: int = 16              # frames per world clip
    window: int = 1                    # target frames per sample (temporal stage: 8)
    characters: tuple = (1, 5)         # characters per clip
    pcs: float = 0.3                   # Pre-Classified Sampling: probability of a swap pair
    sheet: float = 0.5                 # share of composed reference sheets (vs natural frames)
    named_fraction: float = 0.3        # share of named characters (the rest are unseen procedural ones)
    mix: float = 0.1                   # share of Cross-Character Augmentation samples (train/cca.py): characters
                                       # cut from their own shows, composited on another show's set (0 = off)
    # ---- optimisation --------------------------------------------------------------------------------
    batch_size: int = 16               # samples per process per step
    max_steps: int = 1000              # total optimisation steps
    learning_rate: float = 1e-4        # AdamW peak learning rate
    warmup_steps: int = 100            # linear warm-up, then --lr_schedule
    lr_schedule: str = "constant"      # after warm-up: "constant" or "cosine" (down to 10 % at max_steps)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"        # "bf16": autocast the forward (weights and optimiser stay fp32); 1.5× faster on
                                       # this CPU's AMX/AVX-512-BF16 units, and the usual choice on GPUs
    cfg_dropout: float = 0.1           # probability of dropping reference + context (classifier-free guidance)
    character_weight: float = 0.0      # extra weight of character pixels in the diffusion loss: each latent pixel
                                       # weighs 1 + w × (share of it covered by a character), normalised per sample
                                       # (characters are ~15 % of a frame but all of the identity)
    timestep_focus: float = 0.0        # share of samples whose timestep is drawn below half the schedule, where SDEdit
                                       # sampling from the prior spends every step (objectives.TIMESTEP_FOCUS_CUT); the rest
                                       # stay uniform over the whole schedule (pure-noise starts keep working)
    prior_start: float = 0.0           # share of samples noised from the appearance prior's latents, not the frame's,
                                       # at a timestep below TIMESTEP_FOCUS_CUT × T, and trained to denoise to the
                                       # frame: sampling starts from the noised prior (SDEdit), a start the plain
                                       # objective never shows the model (objectives.GeneratorObjective.prior_start)
    # ---- IMG (img stage, variant "full") -------------------------------------------------------------
    img_weight: float = 0.2            # λ in L = L_diffusion + λ (1 − mean_ℓ IC_ℓ)
    msm_layers: int = 2                # multi-scale matching: how many layers of MSM_ORDER
    # ---- cce (library tokens; --init is the frozen generator, "" = assets/models/tiny) ------------------
    motion_model: str = ""             # the frozen motion model ("" = assets/models/motion)
    library: str = ""                  # the library whose characters get tokens ("" = assets/characters)
    cce_init: str = "images"           # identity tokens start from the image encoder ("images") or at "random"
    cce_views: int = 4                 # world portraits per world character (besides its reference) for that start
    diffusion_weight: float = 1.0      # captioned clips through the frozen generator
    contrastive_weight: float = 0.1    # image-derived vs learned identity alignment (InfoNCE)
    motion_weight: float = 1.0         # world motions through the frozen motion model (behaviour)
    appearance_weight: float = 1.0     # the character encoder: image tokens → behaviour
    # ---- vae -----------------------------------------------------------------------------------------
    vae_crop: int = 64                 # train the (fully convolutional) VAE on random crops: 4× cheaper than 128
    vae_decoder_only: bool = False     # train the decoder only: the encoder, hence the latent space and its scale,
                                       # stay exactly --init's, so a generator trained on them keeps working
    vae_prior_share: float = 0.0       # share of the VAE's images that are appearance priors (pasted cut-outs, the
                                       # SDEdit start every generation is encoded from) instead of world frames
    kl_weight: float = 1e-6
    edge_weight: float = 0.5           # L1 on image gradients: keeps outlines and textures sharp
    # ---- bookkeeping ---------------------------------------------------------------------------------
    output_dir: str = "runs/generator"
    checkpointing_steps: int = 250     # write a checkpoint every N steps (and at the end)
    checkpoints_total_limit: int = 3   # keep this many
    validation_steps: int = 500        # render the validation scenes every N steps (0 = never)
    log_steps: int = 10
    num_workers: int = 1               # data-loading processes (the world renders on the fly)
    threads: int = 1                   # torch threads per process. 1 by default: on a shared 2-core CPU, OpenMP
                                       # spin-waiting made 2 threads up to 100× slower; raise it on big idle hosts

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["characters"] = list(self.characters)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if "characters" in d:
            d["characters"] = tuple(d["characters"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"config: unknown field(s) {sorted(unknown)}")
        return cls(**d)

    def check(self) -> "TrainConfig":
        if self.stage not in STAGES:
            raise ValueError(f"stage: unknown {self.stage!r}; use one of {', '.join(STAGES)}")
        if self.variant not in VARIANTS:
            raise ValueError(f"--variant: unknown {self.variant!r}; use one of {', '.join(VARIANTS)}")
        if self.mode not in ("plain", "ieg", "end2end", "end2end-m"):
            raise ValueError(f"--mode: unknown {self.mode!r}; use plain, ieg, end2end or end2end-m")
        if not 1 <= self.msm_layers <= len(MSM_ORDER):
            raise ValueError(f"--msm_layers: {self.msm_layers} must be 1..{len(MSM_ORDER)}")
        if not 0 <= self.pcs <= 1 or not 0 <= self.sheet <= 1 or not 0 <= self.mix <= 1:
            raise ValueError("--pcs, --sheet and --mix are probabilities in 0..1")
        if self.img_weight < 0:
            raise ValueError(f"--img_weight: {self.img_weight} must be ≥ 0")
        if not 0 <= self.timestep_focus <= 1 or (self.timestep_focus and not self.appearance_prior):
            raise ValueError(f"--timestep_focus: {self.timestep_focus} must be in 0..1, and only for models that read "
                             "the appearance prior (their sampling starts from it, below half the schedule)")
        if not 0 <= self.prior_start <= 1 or (self.prior_start and not self.appearance_prior):
            raise ValueError(f"--prior_start: {self.prior_start} must be in 0..1, and only for models that read the "
                             "appearance prior (their sampling starts from it)")
        if self.character_weight < 0:
            raise ValueError(f"--character_weight: {self.character_weight} must be ≥ 0 (0 = plain ε-MSE)")
        if self.window > self.clip_frames:
            raise ValueError(f"--window {self.window} is longer than --clip_frames {self.clip_frames}")
        if self.vae_decoder_only and (self.stage != "vae" or not self.init):
            raise ValueError("--vae_decoder_only: only for the vae stage, with --init naming the model whose "
                             "encoder (latent space) to keep")
        if not 0 <= self.vae_prior_share <= 1 or (self.vae_prior_share and self.stage != "vae"):
            raise ValueError(f"--vae_prior_share: {self.vae_prior_share} must be in 0..1, and only for the vae stage")
        if self.vae_crop and (self.vae_crop % 8 or self.vae_crop > self.size):
            raise ValueError(f"--vae_crop: {self.vae_crop} must be a multiple of 8 and ≤ --size (0 = whole frames)")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"--mixed_precision: unknown {self.mixed_precision!r}; use no, bf16 or fp16 (fp16 needs a GPU)")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"--lr_schedule: unknown {self.lr_schedule!r}; use constant or cosine")
        if self.cce_init not in ("images", "random"):
            raise ValueError(f"--cce_init: unknown {self.cce_init!r}; use images or random")
        if self.cce_views < 0:
            raise ValueError(f"--cce_views: {self.cce_views} must be ≥ 0")
        if self.threads < 1:
            raise ValueError(f"--threads: {self.threads} must be ≥ 1")
        if self.batch_size < 1 or self.max_steps < 1 or self.checkpointing_steps < 1:
            raise ValueError("--batch_size, --max_steps and --checkpointing_steps must be ≥ 1")
        return self

    @property
    def guidance_mode(self) -> str:
        """The model's guidance mode for this run (img stage: from the variant)."""
        return VARIANT_SETTINGS[self.variant][0] if self.stage == "img" else self.mode

    @property
    def use_img(self) -> bool:
        return self.stage == "img" and VARIANT_SETTINGS[self.variant][1] and self.img_weight > 0

    def json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Fields that say how a run is executed or logged, not what it trains: a run differing only in these is the
# same model (resume may change them; a finished run with the same remaining fields can be reused).
BOOKKEEPING_FIELDS = ("threads", "num_workers", "checkpointing_steps", "checkpoints_total_limit",
                      "validation_steps", "log_steps")


# Defaults per stage (flags given on the command line override them).
STAGE_DEFAULTS: dict[str, dict] = {
    "vae": dict(batch_size=16, learning_rate=2e-4, warmup_steps=50, max_steps=3000, output_dir="runs/vae"),
    "generator": dict(batch_size=16, learning_rate=1e-4, max_steps=6000, output_dir="runs/generator"),
    "temporal": dict(batch_size=2, window=8, learning_rate=1e-4, max_steps=800, output_dir="runs/temporal"),
    "img": dict(batch_size=16, learning_rate=5e-5, warmup_steps=50, max_steps=1500, output_dir="runs/img"),
    "motion": dict(batch_size=32, learning_rate=1e-3, warmup_steps=100, max_steps=3000, clip_frames=32,
                   lr_schedule="cosine",
                   named_fraction=0.5, checkpointing_steps=500, validation_steps=500, output_dir="runs/motion"),
    "cce": dict(batch_size=4, learning_rate=5e-3, warmup_steps=20, max_steps=300, named_fraction=0.9,
                characters=(1, 3), checkpointing_steps=100, validation_steps=100, output_dir="runs/cce"),
}
