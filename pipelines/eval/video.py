"""Reading and writing the videos the evaluation consumes and produces (mp4 / gif / webm through
imageio-ffmpeg, or raw arrays in .npy / .npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_video(path: str | Path) -> tuple[np.ndarray, float | None]:
    """A video file → (frames (F, H, W, 3) uint8, fps or None). ``.npy`` holds the frames array, ``.npz``
    an array named ``frames`` (and optionally ``fps``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video: file not found: {path}")
    suffix = path.suffix.lower()
    fps = None
    if suffix == ".npy":
        frames = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "frames" not in z:
                raise ValueError(f"video: {path.name} has no array named 'frames' (found {', '.join(z.files)})")
            frames = z["frames"]
            fps = float(z["fps"]) if "fps" in z else None
    else:
        import imageio.v2 as imageio
        try:
            reader = imageio.get_reader(path)
        except Exception as e:               # imageio raises several types for unknown formats
            raise ValueError(f"video: cannot read {path.name} ({e}); give an mp4, gif, webm, npy or npz") from None
        with reader:
            fps = reader.get_meta_data().get("fps")
            if fps is None and "duration" in reader.get_meta_data():        # gif: duration per frame in ms
                fps = 1000.0 / max(1e-6, float(reader.get_meta_data()["duration"]))
            frames = np.stack([np.asarray(f)[..., :3] for f in reader])
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"video: {path.name} decodes to shape {frames.shape}; expected (frames, height, width, 3)")
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating) and frames.max() <= 1.0:
            frames = frames * 255.0
        frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    return frames, (float(fps) if fps else None)


def write_video(path: str | Path, frames: np.ndarray, fps: float = 8.0) -> Path:
    """Write (F, H, W, 3) uint8 as mp4 (H.264) or gif, by the file's suffix."""
    import imageio.v2 as imageio
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        imageio.mimwrite(path, list(frames), duration=1000.0 / fps, loop=0)
    else:
        imageio.mimwrite(path, list(frames), fps=fps, codec="libx264", quality=8, macro_block_size=16,
                         pixelformat="yuv420p")
    return path
