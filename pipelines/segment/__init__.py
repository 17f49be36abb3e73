"""Click segmentation: cut characters out of images by clicking on them, and carry their masks through
videos. SAM2 when its weights are on the machine, an offline engine otherwise.

    from pipelines.segment import Segmenter, cutout
    seg = Segmenter()                        # backend "auto" | "sam2" | "fallback"; seg.status says which and why
    seg.set_image(image)
    masks, scores, low_res_logits = seg.predict(points=[(x, y)], labels=[1])
    rgba = cutout(image, masks[0])

Modules: ``predictor`` (the Segmenter facade), ``inputs`` (checking what users pass), ``sam2_engine``
(SAM2), ``offline`` + ``clicknet`` (the offline engine and its network; ``train`` trains it; ``edges``
snaps its answer's edge onto the image's), ``grabcut``
(last resort without any weights), ``track`` (video propagation without SAM2), ``cutout``, ``protocol``
(simulated clicks and IoU, shared by training, benchmark and tests).
"""

from .cutout import cutout
from .predictor import BACKENDS, Segmenter
from .sam2_engine import WeightsNotFound

__all__ = ["Segmenter", "cutout", "WeightsNotFound", "BACKENDS"]
