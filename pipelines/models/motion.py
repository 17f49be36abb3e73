"""Text mode's motion model: CCE behaviour tokens + action words → keypoint tracks (F, T, 18, 3) for every
character of a prompt, which the pose-driven generator then renders.

    model = MotionModel.from_pretrained("assets/models/motion")
    kp = model.generate_keypoints("", prompt="[character: Pip] chases [character: Dora].", names=["Pip", "Dora"],
                                  num_frames=16, width=128, height=128, generator=torch.Generator().manual_seed(0))

How it is built (a phase-functioned decoder, after Holden et al.'s PFNN, on a set of characters):

* **behaviour** ``b`` (``behaviour_dim``) per character: a library character's learned CCE behaviour
  token (``cce.safetensors``), or ``encode_behaviour`` of a clip of it (a temporal conv net plus
  least-squares periodograms and amplitude spectra of its joints, so gait frequency, stride, arm swing and
  bounce are measured, not guessed), or the prior.
* **conditioning**: ``b`` + the bag of its sentence's action words (``VOCABULARY``; synonyms are mapped,
  unknown words reported) + its role (subject / object) + the number of characters → a token per
  character; a transformer over the characters lets a chaser find its target and swappers each other.
* **latents** sampled per character, in order, each given the earlier ones (so two characters that meet
  start on opposite sides): start x and ground line (categorical bins) and travel direction (left / none /
  right); the gait phase φ is uniform. In training they are read off the ground truth.
* **clock**: a frequency head gives the character's step rate ``f`` from ``b`` and the words; the decoder
  sees sin/cos of θ(t) = 2π f t + φ (and 2θ), so a gait keeps its period instead of averaging away.
* **decoder**: per frame, an MLP whose first layer is phase-functioned — the character (context + ``b``)
  sets the weights of each clock harmonic — → 18 joints relative to the start point (units of canvas
  height) + joint visibility.

Keypoints are in units of the canvas height ``H`` (x and y); ``generate_keypoints`` maps them to pixels.
The trainer (``python -m pipelines.train motion``) and its objective live in ``pipelines/train``.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..pose.openpose import J, NUM_JOINTS

logger = logging.getLogger(__name__)

# The words of the world's captions (pipelines.world.motions.caption) — what the model is trained on.
VOCABULARY = ("<pad>", "walks", "walk", "runs", "run", "jumps", "jump", "waves", "at", "dances", "dance",
              "chases", "high-fives", "hugs", "swap", "places", "watches", "watch", "to", "the", "left", "right")
ACTION_WORDS = {"walks", "walk", "runs", "run", "jumps", "jump", "waves", "dances", "dance", "chases",
                "high-fives", "hugs", "swap", "watches", "watch"}
# Other ways to say the same things (inference only): variant → the training word it means.
SYNONYMS = {
    **dict.fromkeys(("strolls", "stroll", "walking", "walked", "steps", "marches", "march", "wanders", "wander",
                     "ambles", "amble", "strides", "stride", "goes", "go", "moves", "move", "heads", "head"), "walks"),
    **dict.fromkeys(("jogs", "jog", "sprints", "sprint", "dashes", "dash", "races", "race", "running", "ran",
                     "rushes", "rush", "hurries", "hurry"), "runs"),
    **dict.fromkeys(("hops", "hop", "leaps", "leap", "bounces", "bounce", "jumping", "jumped", "skips", "skip"),
                    "jumps"),
    **dict.fromkeys(("greets", "greet", "waving", "waved", "hails", "salutes"), "waves"),
    **dict.fromkeys(("boogies", "boogie", "grooves", "groove", "dancing", "danced", "twirls", "twirl", "party",
                     "parties"), "dances"),
    **dict.fromkeys(("follows", "follow", "pursues", "pursue", "chasing", "chased", "chase", "hunts", "hunt"),
                    "chases"),
    **dict.fromkeys(("high-five", "highfives", "highfive", "slaps"), "high-fives"),
    **dict.fromkeys(("embraces", "embrace", "hugging", "hugged", "hug", "cuddles", "cuddle"), "hugs"),
    **dict.fromkeys(("switch", "switches", "trade", "trades", "exchange", "exchanges", "swaps", "swapping",
                     "swapped", "cross", "crosses"), "swap"),
    **dict.fromkeys(("positions", "position", "place", "spots", "spot", "sides", "side"), "places"),
    **dict.fromkeys(("stands", "stand", "waits", "wait", "looks", "look", "observes", "observe", "idles", "idle",
                     "stays", "stay", "rests", "rest", "watching", "watched", "on"), "watches"),
    "rightwards": "right", "leftwards": "left", "towards": "to", "toward": "to", "a": "the",
}
IGNORED = {"and", "then", "while", "each", "other", "together", "with", "of", "in", "into", "across", "around",
           "over", "up", "down", "from", "his", "her", "their", "its", "very", "again", "it", "they", "them",
           "both", "all", "everyone", "s"}
ROLES = ("subject", "object")
DIRECTIONS = (-1, 0, 1)                          # latent travel direction classes: left, none, right


def text_words(words) -> tuple[list[str], list[str]]:
    """Map a sentence's words onto ``VOCABULARY`` → (known words, words the model cannot use)."""
    known, unknown = [], []
    words = list(words)
    i = 0
    while i < len(words):
        w = words[i]
        if w == "high" and i + 1 < len(words) and words[i + 1] in ("five", "fives"):
            w, i = "high-fives", i + 1
        w = SYNONYMS.get(w, w)
        if w in VOCABULARY:
            known.append(w)
        elif w not in IGNORED:
            unknown.append(words[i])
        i += 1
    return known, unknown


def word_ids(words: list[str], vocabulary: tuple[str, ...] = VOCABULARY, length: int = 8) -> list[int]:
    """Indices of ``words`` in ``vocabulary`` (unknown ones dropped), padded with 0 to ``length``."""
    index = {w: i for i, w in enumerate(vocabulary)}
    ids = [index[w] for w in words if w in index][:length]
    return ids + [0] * (length - len(ids))


# model sizes: the shipped one, and a small one for fast tests
MOTION_TINY: dict = {}
MOTION_TEST = dict(behaviour_dim=8, word_dim=8, hidden=32, heads=2, layers=1, decoder_hidden=64, decoder_layers=2,
                   encoder_channels=(16, 32))


# ---------------------------------------------------------------------------------------------------------
# track measurements (shared by training labels and inference inputs)
# ---------------------------------------------------------------------------------------------------------
FREQ_GRID = np.round(np.arange(0.3, 3.85, 0.05), 3)           # Hz: the periodogram the encoder reads


@lru_cache(maxsize=1024)
def _projectors(frames: int, fps: float, grid: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """For each frequency, Xᵀ (4, F) of the design matrix X = [sin, cos, 1, t] and its pseudo-inverse (4, F)."""
    t = np.arange(frames) / fps
    w = 2 * np.pi * np.asarray(grid)[:, None] * t[None]
    X = np.stack([np.sin(w), np.cos(w), np.ones_like(w), np.broadcast_to(t - t.mean(), w.shape)], -1)   # (G, F, 4)
    return np.ascontiguousarray(X.transpose(0, 2, 1)), np.linalg.pinv(X)


def body_height(kp: np.ndarray) -> np.ndarray:
    """(..., 18, ≥2) → neck-to-lower-ankle length per frame (a stable, pose-independent scale)."""
    neck = kp[..., J["neck"], :2]
    ank = np.maximum(kp[..., J["r_ankle"], 1], kp[..., J["l_ankle"], 1])
    hip = (kp[..., J["r_hip"], :2] + kp[..., J["l_hip"], :2]) / 2
    return np.linalg.norm(neck - hip, axis=-1) + np.abs(ank - hip[..., 1])


def relative_joints(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A track (F, 18, 3) → joints relative to each frame's hip centre in units of the track's median body
    height (F, 18, 2), the hip centre (F, 2) and that height."""
    hip = (kp[:, J["r_hip"], :2] + kp[:, J["l_hip"], :2]) / 2
    h = float(np.median(body_height(kp))) or 1.0
    return (kp[..., :2] - hip[:, None]) / h, hip, h


def periodogram(signals: np.ndarray, fps: float, grid=FREQ_GRID) -> np.ndarray:
    """Share of the variance of ``signals`` (F, C) that one sinusoid (+ mean and linear trend) explains, for
    each frequency of ``grid`` → (G,). Least squares, so short clips and any frequency work."""
    F_ = signals.shape[0]
    XT, P = _projectors(F_, float(fps), tuple(float(g) for g in grid))
    y = signals - signals.mean(0)
    total = float((y ** 2).sum())
    if total < 1e-12:
        return np.zeros(len(grid))
    # explained sum of squares of the least-squares fit: ‖X·coef‖² = Σ coef ⊙ (Xᵀ y)
    explained = (np.matmul(P, y) * np.matmul(XT, y)).sum((1, 2))
    return np.clip(explained / total, 0, 1)


def _phase_signal(rel: np.ndarray) -> np.ndarray:
    """The facing-independent signal the clock's phase is read from: vertical difference of the ankles
    (gaits), else of the wrists (waves, dances), else the neck height (jumps, bobs)."""
    cands = [rel[:, J["r_ankle"], 1] - rel[:, J["l_ankle"], 1], rel[:, J["r_wrist"], 1] - rel[:, J["l_wrist"], 1],
             rel[:, J["neck"], 1]]
    for s in cands:
        if np.ptp(s) > 0.03:
            return s
    return cands[-1]


def clock_of(track: np.ndarray, fps: float) -> tuple[float, float, float]:
    """A track (F, 18, 3) in pixels → its clock: (frequency Hz, phase φ in radians, periodicity 0..1).
    Frequency: the periodogram peak over all relative joints (refined to 0.005 Hz); phase: of the
    ``_phase_signal`` at that frequency, so θ(t) = 2π f t + φ."""
    rel, hip, _ = relative_joints(track)
    sig = np.concatenate([rel.reshape(len(rel), -1), hip[:, 1:] / max(1.0, np.median(body_height(track)))], 1)
    coarse = periodogram(sig, fps)
    f0 = float(FREQ_GRID[int(np.argmax(coarse))])
    fine = np.round(f0 + np.arange(-10, 11) * 0.005, 4)
    fine = fine[fine >= 0.3]
    pf = periodogram(sig, fps, fine)
    f = float(fine[int(np.argmax(pf))])
    _, P = _projectors(len(rel), float(fps), (f,))
    s = _phase_signal(rel)
    a, b = (P[0] @ (s - s.mean()))[:2]
    return f, float(math.atan2(b, a)) % (2 * math.pi), float(pf.max())


def encoder_inputs(track: np.ndarray, fps: float, canvas: float) -> tuple[np.ndarray, np.ndarray]:
    """What ``encode_behaviour`` reads from a track (F, 18, 3) in pixels of a ``canvas``-high frame:
    per-frame features (F, 59) — relative joints, visibility, root velocity and height, body size and
    ground line — and spectra (6, G): the periodograms of legs, arms and the whole body (which frequency),
    and the amplitude at each frequency of legs, arms and the body's height (how much: stride, arm
    swing, bounce)."""
    rel, hip, h = relative_joints(track)
    vis = (track[..., 2] > 0).astype(np.float32)
    vel = np.gradient(hip, axis=0) * fps / h if len(hip) > 1 else np.zeros_like(hip)
    ground = np.maximum(track[:, J["r_ankle"], 1], track[:, J["l_ankle"], 1]) / canvas
    rise = ((hip[:, 1] - hip[:, 1].max()) / h)[:, None]
    frame = np.concatenate([rel.reshape(len(rel), -1), vis, vel, rise,
                            np.full((len(rel), 1), h / canvas), ground[:, None]], 1).astype(np.float32)
    legs = rel[:, [J[n] for n in ("r_knee", "r_ankle", "l_knee", "l_ankle")]].reshape(len(rel), -1)
    arms = rel[:, [J[n] for n in ("r_elbow", "r_wrist", "l_elbow", "l_wrist")]].reshape(len(rel), -1)
    body = np.concatenate([rel.reshape(len(rel), -1), vel], 1)
    feet = np.maximum(track[:, J["r_ankle"], 1], track[:, J["l_ankle"], 1])
    height = np.concatenate([rise, rel[:, [J["neck"]], 1], ((feet.max() - feet) / h)[:, None]], 1)

    def amplitude(sig):            # √(2 · explained variance): a sinusoid's amplitude, in body heights
        var = float(((sig - sig.mean(0)) ** 2).sum()) / len(sig)
        return np.sqrt(2 * periodogram(sig, fps) * var)

    spec = np.stack([periodogram(legs, fps), periodogram(arms, fps), periodogram(body, fps),
                     amplitude(legs), amplitude(arms), amplitude(height)]).astype(np.float32)
    return frame, spec


SPECTRA = 6
ENCODER_FRAME_FEATURES = NUM_JOINTS * 2 + NUM_JOINTS + 2 + 1 + 1 + 1


# ---------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------
def _mlp(sizes, act=nn.GELU, last_act=False):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(act())
    return nn.Sequential(*layers)


class MotionModel(ModelMixin, ConfigMixin):
    """See the module docstring."""

    @register_to_config
    def __init__(self, behaviour_dim: int = 32, word_dim: int = 32, hidden: int = 128, heads: int = 4,
                 layers: int = 2, decoder_hidden: int = 256, decoder_layers: int = 3, x_bins: int = 24,
                 ground_bins: int = 12, ground_range: tuple[float, float] = (0.55, 1.0), max_characters: int = 5,
                 encoder_channels: tuple[int, ...] = (64, 128), fps: float = 8.0,
                 vocabulary: tuple[str, ...] = VOCABULARY, max_frequency: float = 4.0):
        super().__init__()
        C = encoder_channels
        # behaviour encoder: temporal convs over frame features + the periodograms
        convs, c_in = [], ENCODER_FRAME_FEATURES
        for i, c in enumerate(C):
            convs += [nn.Conv1d(c_in, c, 5, padding=2, stride=1 if i == 0 else 2), nn.GELU()]
            c_in = c
        self.encoder_convs = nn.Sequential(*convs)
        self.encoder_head = _mlp([2 * c_in + SPECTRA * len(FREQ_GRID), hidden, behaviour_dim])
        self.behaviour_prior = nn.Parameter(torch.zeros(behaviour_dim))          # unknown characters
        # conditioning
        self.words = nn.EmbeddingBag(len(vocabulary), word_dim, mode="mean", padding_idx=0)
        self.role = nn.Embedding(len(ROLES), word_dim)
        self.count = nn.Embedding(max_characters + 1, word_dim)
        self.cond = _mlp([behaviour_dim + 3 * word_dim, hidden, hidden])
        layer = lambda: nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout=0.0, batch_first=True,
                                                   norm_first=True, activation="gelu")
        self.set_encoder = nn.TransformerEncoder(layer(), layers, enable_nested_tensor=False)
        # latents (autoregressive over characters): start x bin, ground bin, direction
        self.latent_embed = nn.Linear(3, hidden)
        self.latent_encoder = nn.TransformerEncoder(layer(), layers, enable_nested_tensor=False)
        self.latent_head = nn.Linear(hidden, x_bins + ground_bins + len(DIRECTIONS))
        self.latent_start = nn.Parameter(torch.zeros(hidden))
        # clock
        self.frequency_head = _mlp([hidden + behaviour_dim, hidden, 1])
        # context with latents, then the per-frame decoder
        self.context_encoder = nn.TransformerEncoder(layer(), layers, enable_nested_tensor=False)
        # phase-functioned first layer (PFNN with a Fourier basis): h = A·s + B·τ(t) + Σ_k c_k(θ(t)) · C_k·s, with
        # s = [context, behaviour] per character and c_k = sin θ, cos θ, sin 2θ, cos 2θ — the character sets
        # each harmonic's weights, so amplitudes (arm swing, stride, bounce) follow its behaviour
        static = hidden + behaviour_dim
        self.decoder_static = nn.Linear(static, decoder_hidden)
        self.decoder_time = nn.Linear(7, decoder_hidden, bias=False)
        self.decoder_phase = nn.Linear(static, 4 * decoder_hidden)
        self.decoder = _mlp([decoder_hidden] * decoder_layers + [NUM_JOINTS * 3])
        self.register_buffer("word_index", torch.arange(len(vocabulary)), persistent=False)

    # ---- vocabulary ----------------------------------------------------------------------------------
    def word_ids(self, words: list[str], length: int = 8) -> list[int]:
        return word_ids(words, tuple(self.config.vocabulary), length)

    # ---- behaviour -----------------------------------------------------------------------------------
    def encode_behaviour(self, frames: torch.Tensor, spectra: torch.Tensor, mask: torch.Tensor | None = None
                         ) -> torch.Tensor:
        """``encoder_inputs`` of clips, batched: frames (N, F, 59), spectra (N, 6, G), mask (N, F) bool → b (N, Db)."""
        x = self.encoder_convs(frames.transpose(1, 2))                          # (N, C, F')
        if mask is None:
            m = torch.ones(x.shape[0], 1, x.shape[2], device=x.device)
        else:
            m = F.interpolate(mask[:, None].float(), size=x.shape[2], mode="nearest")
        n = m.sum(-1).clamp(min=1)
        mean = (x * m).sum(-1) / n
        std = (((x - mean[..., None]) ** 2 * m).sum(-1) / n).clamp(min=1e-6).sqrt()
        return self.encoder_head(torch.cat([mean, std, spectra.flatten(1)], 1))

    # ---- conditioning --------------------------------------------------------------------------------
    def condition(self, behaviour: torch.Tensor, words: torch.Tensor, roles: torch.Tensor,
                  char_mask: torch.Tensor) -> torch.Tensor:
        """behaviour (B, N, Db), words (B, N, L) ids, roles (B, N), char_mask (B, N) → tokens (B, N, hidden)
        that know about each other."""
        B, N, L = words.shape
        w = self.words(words.reshape(B * N, L)).view(B, N, -1)
        count = self.count(char_mask.sum(1).clamp(max=self.config.max_characters))[:, None].expand(B, N, -1)
        tok = self.cond(torch.cat([behaviour, w, self.role(roles), count], -1))
        return self.set_encoder(tok, src_key_padding_mask=~char_mask)

    def latent_values(self, x0: torch.Tensor, g0: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config.ground_range
        return torch.stack([x0 * 2 - 1, (g0 - lo) / (hi - lo) * 2 - 1, direction.float() - 1], -1)

    def latent_logits(self, tokens: torch.Tensor, values: torch.Tensor, char_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, N, x_bins + ground_bins + 3) of character k's latents given the
        latents ``values`` (B, N, 3) of characters < k (a causal transformer over the characters)."""
        B, N, _ = tokens.shape
        prev = torch.cat([self.latent_start.expand(B, 1, -1), self.latent_embed(values[:, :-1])], 1)
        causal = torch.triu(torch.ones(N, N, dtype=torch.bool, device=tokens.device), 1)
        h = self.latent_encoder(tokens + prev, mask=causal, src_key_padding_mask=~char_mask)
        return self.latent_head(h)

    def split_logits(self, logits: torch.Tensor):
        xb, gb = self.config.x_bins, self.config.ground_bins
        return logits[..., :xb], logits[..., xb:xb + gb], logits[..., xb + gb:]

    def bins_to_values(self, x_bin, g_bin, jitter_x=None, jitter_g=None):
        lo, hi = self.config.ground_range
        jx = 0.5 if jitter_x is None else jitter_x
        jg = 0.5 if jitter_g is None else jitter_g
        return (x_bin.float() + jx) / self.config.x_bins, lo + (g_bin.float() + jg) / self.config.ground_bins * (hi - lo)

    def values_to_bins(self, x0, g0):
        lo, hi = self.config.ground_range
        xb = (x0 * self.config.x_bins).long().clamp(0, self.config.x_bins - 1)
        gb = ((g0 - lo) / (hi - lo) * self.config.ground_bins).long().clamp(0, self.config.ground_bins - 1)
        return xb, gb

    def frequency(self, tokens: torch.Tensor, behaviour: torch.Tensor) -> torch.Tensor:
        """(B, N) step rate of each character's clock in Hz (0.3 … max_frequency)."""
        f = self.frequency_head(torch.cat([tokens, behaviour], -1)).squeeze(-1)
        return 0.3 + (self.config.max_frequency - 0.3) * torch.sigmoid(f)

    def context(self, tokens, values, char_mask):
        return self.context_encoder(tokens + self.latent_embed(values), src_key_padding_mask=~char_mask)

    def decode(self, context: torch.Tensor, behaviour: torch.Tensor, time: torch.Tensor, duration: torch.Tensor,
               freq: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """context (B, N, hidden), behaviour (B, N, Db), time (B, F) seconds, duration (B,), freq / phase (B, N)
        → (B, N, F, 18, 3): joints relative to the start point (units of canvas height) and visibility logits."""
        B, N, _ = context.shape
        Fr = time.shape[1]
        t = time[:, None, :].expand(B, N, Fr)
        rel = t / duration[:, None, None].clamp(min=1e-3)
        theta = 2 * math.pi * freq[..., None] * t + phase[..., None]
        tau = torch.stack([t / 4, rel, torch.sin(math.pi * rel), torch.cos(math.pi * rel), rel ** 2,
                           torch.full_like(t, 1.0) * duration[:, None, None] / 4,
                           freq[..., None].expand_as(t) / self.config.max_frequency], -1)        # (B, N, F, 7)
        clock = torch.stack([torch.sin(theta), torch.cos(theta), torch.sin(2 * theta), torch.cos(2 * theta)], -1)
        s = torch.cat([context, behaviour], -1)                                               # (B, N, S)
        H = self.config.decoder_hidden
        harmonics = self.decoder_phase(s).view(B, N, 1, 4, H)
        h = (self.decoder_static(s)[:, :, None] + self.decoder_time(tau)
             + (clock[..., None] * harmonics).sum(-2))
        return self.decoder(F.gelu(h)).view(B, N, Fr, NUM_JOINTS, 3)

    # ---- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, behaviour: torch.Tensor, words: torch.Tensor, roles: torch.Tensor, num_frames: int,
               fps: float | None = None, generator: torch.Generator | None = None,
               direction: torch.Tensor | None = None) -> np.ndarray:
        """One clip: behaviour (N, Db), words (N, L), roles (N,) → keypoints (F, N, 18, 3) in units of the
        canvas height (x from the left edge of a square canvas, y from the top). ``direction`` (N,) in
        {-1, 0, 1, or 2 = sample} fixes travel directions the text states."""
        fps = fps or self.config.fps
        dev = behaviour.device
        N = behaviour.shape[0]
        mask = torch.ones(1, N, dtype=torch.bool, device=dev)
        tokens = self.condition(behaviour[None], words[None], roles[None], mask)
        values = torch.zeros(1, N, 3, device=dev)
        x0 = torch.zeros(N, device=dev)
        g0 = torch.zeros(N, device=dev)
        d = torch.ones(N, dtype=torch.long, device=dev)
        for k in range(N):                                   # autoregressive over characters
            lx, lg, ld = self.split_logits(self.latent_logits(tokens, values, mask)[0, k])
            xb = torch.multinomial(lx.softmax(-1), 1, generator=generator)
            gb = torch.multinomial(lg.softmax(-1), 1, generator=generator)
            if direction is not None and int(direction[k]) in DIRECTIONS:
                dk = torch.tensor([DIRECTIONS.index(int(direction[k]))], device=dev)
            else:
                dk = torch.multinomial(ld.softmax(-1), 1, generator=generator)
            jx, jg = torch.rand(2, generator=generator).to(dev)
            xv, gv = self.bins_to_values(xb, gb, jx, jg)
            x0[k], g0[k], d[k] = xv.squeeze(), gv.squeeze(), dk.squeeze()
            values[0, k] = self.latent_values(x0[k:k + 1], g0[k:k + 1], d[k:k + 1])[0]
        freq = self.frequency(tokens, behaviour[None])
        phase = torch.rand(1, N, generator=generator).to(dev) * 2 * math.pi
        ctx = self.context(tokens, values, mask)
        time = torch.arange(num_frames, device=dev, dtype=torch.float32)[None] / fps
        out = self.decode(ctx, behaviour[None], time, torch.tensor([num_frames / fps], device=dev), freq, phase)[0]
        kp = torch.cat([out[..., :2] + torch.stack([x0, g0], -1)[:, None, None], (out[..., 2:] > 0).float()], -1)
        return kp.permute(1, 0, 2, 3).cpu().numpy()

    # ---- the MixPipeline's extension point -----------------------------------------------------------
    def generate_keypoints(self, text: str, *, prompt: str = "", names: list[str], num_frames: int, width: int,
                           height: int, generator: torch.Generator | None = None, library=None,
                           behaviours: dict | None = None, fps: float | None = None) -> np.ndarray:
        """Keypoints (num_frames, len(names), 18, 3) in pixels for the characters ``names`` (track order).

        What each character does comes from ``text`` when it names characters (``[character: …]``), else
        from ``prompt``; plain ``text`` without tags is what every character does. A character the text does
        not mention stands by (``watches``). Behaviours: ``behaviours[name]`` (a (Db,) tensor), else the
        library character's CCE ``behaviour`` token, else the prior — ``self.last_warnings`` says which."""
        from ..cce.prompt import action_words, parse_prompt
        if not names:
            raise ValueError("names: give at least one character to move")
        if len(names) > self.config.max_characters:
            raise ValueError(f"names: {len(names)} characters; the motion model moves at most "
                             f"{self.config.max_characters}")
        warnings: list[str] = []
        source = text if "[" in (text or "") else prompt
        parsed = parse_prompt(source, library=library, known=names) if source and "[" in source else None
        if parsed is not None:
            extra = [n for n in parsed.characters if n.lower() not in {m.lower() for m in names}]
            if extra:
                warnings.append(f"the text names {', '.join(extra)}, who {'is' if len(extra) == 1 else 'are'} not "
                                "in the scene; ignored")
        words_of, roles = [], []
        for name in names:
            acts = parsed.actions_of(name) if parsed is not None else []
            if acts:
                words, role = list(acts[0].words), acts[0].role
            elif text and "[" not in text:
                words, role = action_words(text), "subject"
            else:
                words, role = ["watches"], "subject"
                if parsed is not None:
                    warnings.append(f"{name} is not in the text; it stands by")
            known, unknown = text_words(words)
            if unknown:
                warnings.append(f"{name}: the motion model does not know {', '.join(repr(u) for u in unknown)} "
                                "(ignored)")
            if not any(w in ACTION_WORDS for w in known):
                warnings.append(f"{name}: no action the motion model knows in {' '.join(words)!r}; it stands by")
                known = known + ["watches"]
            words_of.append(known)
            roles.append(ROLES.index(role))
        direction = []
        for known in words_of:
            d = 1 if "right" in known else -1 if "left" in known else 2
            direction.append(d)
        b = torch.stack([self._behaviour_for(n, library, behaviours, warnings) for n in names])
        dev = self.behaviour_prior.device
        w = torch.tensor([self.word_ids(k) for k in words_of], device=dev)
        kp = self.sample(b.to(dev), w, torch.tensor(roles, device=dev), num_frames, fps, generator,
                         torch.tensor(direction))
        self.last_warnings = warnings
        for msg in warnings:
            logger.warning("motion model: %s", msg)
        return to_pixels(kp, width, height)

    def _behaviour_for(self, name: str, library, behaviours: dict | None, warnings: list[str]) -> torch.Tensor:
        if behaviours and name in behaviours:
            return torch.as_tensor(behaviours[name], dtype=torch.float32).reshape(-1)
        from ..cce.embedding import fingerprint, load_embedding
        emb = load_embedding(name, library)
        if emb is not None:
            learned_for = emb.provenance.get("motion_model")
            if getattr(self, "_fingerprint", None) is None:
                self._fingerprint = fingerprint(self)
            if emb.behaviour.numel() == self.config.behaviour_dim and learned_for in (None, self._fingerprint):
                return emb.behaviour.float().reshape(-1)
            warnings.append(f"{name}: its CCE behaviour was learned for another motion model; using the average "
                            "behaviour (re-learn it: python -m pipelines.train cce, then export)")
        else:
            warnings.append(f"{name}: no learned behaviour (cce.safetensors); using the average behaviour")
        return self.behaviour_prior.detach().float().cpu()


def to_pixels(kp: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keypoints in units of a square canvas's height → pixels of a width × height frame (fitted, centred)."""
    from ..pose.openpose import rescale
    side = 1000.0
    px = kp.copy()
    px[..., :2] *= side
    return rescale(px, (int(side), int(side)), (int(width), int(height))).astype(np.float32)


__all__ = ["MotionModel", "MOTION_TINY", "MOTION_TEST", "word_ids", "VOCABULARY", "SYNONYMS", "ACTION_WORDS", "text_words", "clock_of", "encoder_inputs",
           "periodogram", "relative_joints", "body_height", "to_pixels", "FREQ_GRID"]
