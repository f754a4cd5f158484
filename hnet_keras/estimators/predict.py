"""Using a trained model: corner offsets of pairs of any patch size, and the homography
between two whole images of any size (the network's coarse estimate, refined by ECC).

The model works at its own input size ``S`` (128 for the paper). Inputs of another
size are resized to ``S``; the predicted offsets, which are in pixels of the resized
input, are then scaled back to the given size. Regression models output
``offsets / rho``; classification models output bin probabilities, decoded by their
expectation (:func:`hnet_keras.nets.targets.outputs_to_offsets`). The ``rho`` the model was
trained with is always an argument: :func:`hnet_keras.nets.checkpoint.load_checkpoint` gives it.
"""

from __future__ import annotations

import functools
import warnings

import cv2
import numpy as np

from ..data.synthesis import (
    TRAIN_PROTOCOL,
    normalize_images,
    resize_image,
    resize_with_scale,
    resize_pairs,
)
from ..geometry import offsets_to_homography
from ..nets.checkpoint import check_rho
from ..nets.targets import outputs_to_offsets
from .contract import EstimationFailed
from .refine import MIN_ALIGNMENT_SCORE, MIN_TEXTURE, align_images, alignment_score, image_texture
from .superpoint_method import SuperPointMethod

__all__ = [
    "model_input_size",
    "predict_offsets",
    "coarse_homography",
    "coarse_homographies",
    "estimate_homography",
    "estimate_homographies",
    "EstimateWarning",
    "LowTextureWarning",
    "ShapeWarning",
    "MismatchWarning",
    "WORK_PIXELS",
    "MAX_ASPECT",
    "MIN_SIDE",
]

"""Every MACE a notebook reports is in pixels of a patch of this side (128, the paper's)."""

COARSE_PATCH = TRAIN_PROTOCOL.patch_size
"""Side of the central patch the network sees of two whole images (its training patches' side)."""
COARSE_SIDE = COARSE_PATCH * 5 // 4
"""Short side the whole images are scaled to before the central patch is cut (160 px)."""
COARSE_PASSES = 3
"""Network passes of the coarse estimate (each further one on B aligned by the previous).
On 60 whole-image test pairs (640x480, corners moved up to 20%, a mid-training model),
98% ended within 3 px after ECC with 3 passes, 95% with 2 and 88% with 1."""



def model_input_size(model):
    """The side ``S`` of the square ``(S, S, 2)`` pairs the model takes."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 2 or shape[1] is None:
        raise ValueError(f"expected a model taking (S, S, 2) pairs, got input shape {shape}")
    return int(shape[1])


def _predict_model_pixels(model, pairs, rho, batch_size, decode="expectation"):
    """Offsets in pixels of the model's input for (N, S, S, 2) uint8 pairs.

    The model runs through its compiled inference step (``predict_on_batch``, traced once
    per model and reused), one call per ``batch_size`` pairs: ``model.predict`` would build
    a data pipeline per call, most of the time of a whole-image estimate. Same outputs.
    """
    rho = check_rho(rho, "rho")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    inputs = normalize_images(pairs)
    if not len(inputs):
        return np.zeros((0, 8))
    outputs = [np.asarray(model.predict_on_batch(inputs[start : start + batch_size]))
               for start in range(0, len(inputs), batch_size)]
    return outputs_to_offsets(np.concatenate(outputs) if len(outputs) > 1 else outputs[0], rho, decode)


def predict_offsets(model, pairs, rho, batch_size=64, decode="expectation"):
    """Corner offsets of stacked pairs, in pixels of the pairs' own size.

    Args:
        model: a HomographyNet (regression, classification or mobilenet).
        pairs: uint8 (N, P, P, 2), patch A in channel 0 and patch B in channel 1, any P.
            Pairs whose P differs from the model's input are resized to it.
        rho: the ``rho`` the model was trained with (its targets were ``offsets / rho``).
        batch_size: pairs per forward pass.
        decode: how a classification model's bins become offsets, ``"expectation"``
            or ``"argmax"`` (:func:`hnet_keras.nets.targets.decode_bins`).

    Returns:
        (N, 8) float64 offsets, scaled by ``P / S``.
    """
    pairs = np.asarray(pairs)
    if pairs.dtype != np.uint8 or pairs.ndim != 4 or pairs.shape[3] != 2 or pairs.shape[1] != pairs.shape[2]:
        raise ValueError(f"pairs must be uint8 (N, P, P, 2), got {pairs.dtype} {pairs.shape}")
    size = model_input_size(model)
    patch = pairs.shape[1]
    pairs = resize_pairs(pairs, size)
    return _predict_model_pixels(model, pairs, rho, batch_size, decode) * (patch / size)


def _to_gray(image, name):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 grayscale (H, W) or BGR (H, W, 3) image, got {image.dtype} {image.shape}")
    return image


class EstimateWarning(UserWarning):
    """An estimate of a whole-image homography that should not be trusted (its reason in the message)."""


class LowTextureWarning(EstimateWarning):
    """An image has too little texture for any estimate of its homography to be trusted."""


class ShapeWarning(EstimateWarning):
    """The images are too small or too elongated for their homography to be estimated."""


class MismatchWarning(EstimateWarning):
    """Even the best alignment found leaves the images uncorrelated: they may not show the same scene."""


WORK_PIXELS = 1_000_000
"""Largest working resolution (pixels) of :func:`estimate_homography`: larger images are scaled
down to it (area averaging) and the homography scaled back. ECC and the alignment scores cost
time and memory per pixel: an 8000x6000 pair took 35 s and 6.2 GB at full size, 3 s and 1.2 GB
(the whole process, TensorFlow included) at 2 MP, and 0.3 s and 0.96 GB at 1 MP, the bound. (A
"1.52 GB on a fresh CI run" reported earlier was the test runner's own peak: a child's
``ru_maxrss`` includes its parent's at the fork on Linux; ``VmHWM`` does not.) The texture is
measured there too."""
MAX_ASPECT = 4.0
"""Most elongated image shape (long side / short side) whose homography is estimated without a
:class:`ShapeWarning`. The network sees the central square of the images, the rest of a long
image is extrapolated. On 16 photo pairs per shape (about 0.3 MP, corners moved up to 3% and
10%), within 3 px: all at 3:1, 15 of 16 at 4:1, 11 and 9 at 6:1, 2 and 4 at 8:1, none at 16:1."""
MIN_SIDE = 32
"""Smallest short side (pixels) whose homography is estimated: under it, the identity is returned
with a :class:`ShapeWarning`. On 16 photo pairs per size (corners moved up to 3% and 10%), the
estimate was worse aligned than the identity on 7 of 32 pairs of 16x12 px, 4 of 24x18, 4 of
32x24, none from 48x36 up."""
RETRY_SCORE = 0.2
"""Alignment score under which :func:`estimate_homography` also tries the large-motion hypotheses
(:data:`HYPOTHESIS_ANGLES` x :data:`HYPOTHESIS_SCALES`); it tries them too when the refinement
was not kept. A pair the network's own start lets ECC align well is never slowed down. On the
whole-image classes, 2 zoom + rotation pairs whose refinement had run away from starts scoring
0.33 and 0.21 were found that way (2.3 and 0.03 px off, from 6.2 and 19.5)."""
HYPOTHESIS_ANGLES = tuple(range(0, 360, 30))
"""Rotations (degrees) of the large-motion hypotheses: the network corrects about 15 degrees."""
HYPOTHESIS_SCALES = (0.5, 0.71, 1.0, 1.41, 2.0)
"""Zooms of the large-motion hypotheses, a factor of about 1.4 apart."""
HYPOTHESIS_SIDE = 240
"""Short side (px) the hypotheses are screened at (network and alignment score)."""


def coarse_homography(model, gray_a, gray_b, rho, passes=COARSE_PASSES):
    """The network's ``H_ab`` of two same-size grayscale images, from their central patch.

    Both images are scaled so their short side is :data:`COARSE_SIDE` (128 * 1.25) and
    the network sees the central :data:`COARSE_PATCH` px square of each: what it was
    trained on (a patch of a larger image, B the same window of the moved image). Its
    offsets are those of that square's corners, turned into ``H_ab`` in full-image pixels.
    Each further pass warps B by the estimate so far into A's frame and asks the network
    for what is left (``H_ab = H @ R``), a smaller motion it measures more precisely.
    """
    return coarse_homographies(model, [(gray_a, gray_b)], rho, passes)[0]


def coarse_homographies(model, pairs, rho, passes=COARSE_PASSES, batch_size=64):
    """:func:`coarse_homography` of many ``(gray_a, gray_b)`` pairs (each pair of one size, sizes
    may differ between pairs), each pass one batched network call for all of them."""
    windows = [_central_window(gray_a.shape) for gray_a, _ in pairs]
    smalls_a = [resize_image(gray_a, *window[:2])[window[2]] for (gray_a, _), window in zip(pairs, windows)]
    estimates = [np.eye(3)] * len(pairs)
    for step in range(passes):
        stacked = []
        for (gray_a, gray_b), small_a, window, h_ab in zip(pairs, smalls_a, windows, estimates):
            if step:
                height, width = gray_a.shape
                flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # B in A's frame by the estimate so far
                gray_b = cv2.warpPerspective(gray_b, h_ab, (width, height), flags=flags)
            stacked.append(np.stack([small_a, resize_image(gray_b, *window[:2])[window[2]]], axis=-1))
        offsets = predict_offsets(model, np.stack(stacked), rho, batch_size=batch_size) if stacked else []
        estimates = [h_ab @ _patch_to_image(window, found) for window, h_ab, found in zip(windows, estimates, offsets)]
    return [h_ab / h_ab[2, 2] for h_ab in estimates]


def _central_window(shape):
    """``(small_w, small_h, window, to_patch)``: the images' size at a short side of :data:`COARSE_SIDE`,
    the slices of their central :data:`COARSE_PATCH` square there, and the map of image points to it."""
    height, width = shape
    scale = COARSE_SIDE / min(height, width)
    small_w, small_h = max(COARSE_PATCH, round(width * scale)), max(COARSE_PATCH, round(height * scale))
    left, top = (small_w - COARSE_PATCH) // 2, (small_h - COARSE_PATCH) // 2
    window = (slice(top, top + COARSE_PATCH), slice(left, left + COARSE_PATCH))
    to_patch = np.array([[small_w / width, 0.0, -left], [0.0, small_h / height, -top], [0.0, 0.0, 1.0]])
    return small_w, small_h, window, to_patch


def _patch_to_image(window, offsets):
    """The central patch's offsets as ``H_ab`` in image pixels."""
    to_patch = window[3]
    return np.linalg.inv(to_patch) @ offsets_to_homography(offsets, COARSE_PATCH) @ to_patch


def estimate_homography(model, image_a, image_b, rho, refine=True, settings=None, details=False, hypotheses=True,
                        keypoints=True):
    """The homography between two whole images of any size and aspect.

    1. Images over :data:`WORK_PIXELS` are scaled down to it (the answer is scaled back).
    2. A coarse estimate by the network (:func:`coarse_homography`).
    3. With ``refine``: ECC refinement of the images' local contrast up the image pyramid to the
       working resolution (:data:`~hnet_keras.estimators.refine.CONTRAST_SIGMA`; A's frame left out,
       :data:`~hnet_keras.estimators.refine.FRAME_MARGIN`; both with the default ``settings``), and
       the best of the refined estimate, the network's and the identity by normalized
       correlation (:func:`hnet_keras.estimators.refine.align_images`), so the answer is never
       worse aligned than doing nothing.
    4. With ``hypotheses`` (the default), when that best scores under :data:`RETRY_SCORE` or is
       not the refined estimate (ECC failed, ran away, or aligned worse than the start): a
       multi-hypothesis start for large rotation and zoom (:data:`HYPOTHESIS_ANGLES` x
       :data:`HYPOTHESIS_SCALES`, screened by the network and the alignment score at low
       resolution, the best two refined), kept when it scores higher. On 20 photo pairs of
       640x480 rotated up to 60 degrees and zoomed 0.5-2x (blur, noise, exposure changes),
       within 3 px: 14 without it, 20 with it (SIFT + RANSAC: 20). It costs 1-3 s on a pair
       that needs it and nothing on the others: none of the 20 ordinary 900x600 pairs of
       ``benchmarks/bench_whole_images.py``'s timing set needed it (0.38x SIFT's time with it,
       0.40x without, on a loaded 2-core machine).
    5. With ``keypoints`` too, on the same poorly aligned pairs: a start from learned keypoints
       (SuperPoint matches and RANSAC, :class:`~hnet_keras.estimators.superpoint_method.SuperPointMethod`),
       refined the same way and kept when it scores higher. It rescues the pairs where the
       network sees too little: a lone object on a plain background, a photo whose exposure
       crushes most of it to black. On the whole-image classes of the validation photos (seed 1,
       100 pairs each), illumination went from 97 to 100 pairs within 3 px and JPEG from 99 to
       100; on the test photos' illumination pairs from 99 to 100 (one pair from 184 px to 1.2).
       Ordinary pairs never reach it; on 60 unrelated photo pairs the best answer still scored
       0.07 at most.

    Image B may differ in size from A: it is resized to A's size first and the result
    composed with that scaling. An answer not to be trusted comes with an
    :class:`EstimateWarning` (one line) and ``trusted`` false in the details:

    * :class:`LowTextureWarning`: an image's mean gradient is under :data:`MIN_TEXTURE`
      gray levels per pixel (at the working resolution);
    * :class:`ShapeWarning`: A's short side is under :data:`MIN_SIDE` px (the identity is
      returned) or its aspect ratio over :data:`MAX_ASPECT`;
    * :class:`MismatchWarning`: the chosen answer's alignment score is under
      :data:`MIN_ALIGNMENT_SCORE` (unrelated images, or a change no candidate explains).

    Args:
        model: a HomographyNet.
        image_a, image_b: uint8 grayscale (H, W) or BGR (H, W, 3) images.
        rho: the ``rho`` the model was trained with.
        refine: refine the network's estimate (default) or return it as is.
        settings: :class:`hnet_keras.estimators.refine.ECCSettings` for the refinement.
        hypotheses: try the large-motion hypotheses on a poorly aligned answer (step 4; on by default).
        keypoints: the keypoint start of step 5: ``True`` (the default) for the shipped SuperPoint,
            loaded on the first pair that needs it; a method with a ``homography(gray_a, gray_b)``
            (:class:`~hnet_keras.estimators.contract.Method`); ``False`` for none. Only with ``hypotheses``.
        details: also return a dict: ``chosen`` (``"refined"``, ``"start"`` (the
            network's), ``"identity"``, ``"hypothesis"``, with ``hypothesis`` its
            ``{"angle", "scale"}``, or ``"keypoints"``), ``scores`` (each candidate's alignment score),
            ``score`` (the chosen one's), ``trusted``, ``warnings`` (their one-line
            messages), ``fallback`` (why the refinement was not used, or ``None``),
            ``texture`` (of A and B) and ``working_size`` (``(width, height)`` aligned at).

    Returns:
        (3, 3) float64 ``H_ab`` mapping points of image A to the points of image B that
        show the same content (``image_b ~ warpPerspective(image_a, H_ab)``); with
        ``details``, ``(H_ab, details)``.
    """
    found = estimate_homographies(model, [(image_a, image_b)], rho, refine=refine, settings=settings,
                                  hypotheses=hypotheses, keypoints=keypoints)[0]
    for message, category in found[1].pop("_warnings"):
        warnings.warn(message, category, stacklevel=2)
    return found if details else found[0]


def estimate_homographies(model, pairs, rho, refine=True, settings=None, batch_size=64, hypotheses=True,
                          keypoints=True):
    """:func:`estimate_homography` of many ``(image_a, image_b)`` pairs at once: the network's
    passes run batched over all pairs (throughput), each pair's refinement on its own.

    Returns:
        a list of ``(H_ab, details)`` as :func:`estimate_homography` with ``details=True`` gives,
        each ``details`` with a ``_warnings`` list of ``(message, category)`` (not issued here).
    """
    prepared = [_prepare(image_a, image_b) for image_a, image_b in pairs]
    estimable = [i for i, item in enumerate(prepared) if item["estimable"]]
    starts = dict(zip(estimable, coarse_homographies(model, [prepared[i]["work"] for i in estimable], rho,
                                                      batch_size=batch_size)))
    results = []
    for index, item in enumerate(prepared):
        gray_a, gray_b = item["work"]
        h_ab = starts.get(index, np.eye(3))
        info = {"chosen": "start" if index in starts else "identity", "scores": {}, "fallback": None}
        if refine and index in starts:
            h_ab, aligned = align_images(gray_a, gray_b, h_ab, settings)
            info.update(aligned)
            if hypotheses and (aligned["scores"][aligned["chosen"]] < RETRY_SCORE or aligned["chosen"] != "refined"):
                h_ab = _try_hypotheses(model, gray_a, gray_b, rho, settings, batch_size, h_ab, info)
                if keypoints:
                    method = _shipped_keypoints() if keypoints is True else keypoints
                    h_ab = _try_keypoints(method, gray_a, gray_b, settings, h_ab, info)
        else:
            info["scores"] = {info["chosen"]: alignment_score(gray_a, gray_b, h_ab)}
        info["score"] = info["scores"][info["chosen"]]
        caught = item["warnings"]
        if not caught and info["score"] < MIN_ALIGNMENT_SCORE:
            caught.append((f"the images do not seem to show the same scene: the best alignment found scores "
                           f"{info['score']:.2f}, under {MIN_ALIGNMENT_SCORE} (1 is a perfect match)", MismatchWarning))
        h_ab = np.linalg.inv(item["to_work_b"]) @ h_ab @ item["to_work_a"]
        info.update(trusted=not caught, warnings=[message for message, _ in caught], texture=item["texture"],
                    working_size=gray_a.shape[::-1], _warnings=caught)
        results.append((h_ab / h_ab[2, 2], info))
    return results


def _prepare(image_a, image_b):
    """A pair at its working resolution, the scalings to it, its texture and shape warnings."""
    gray_a, gray_b = _to_gray(image_a, "image_a"), _to_gray(image_b, "image_b")
    height, width = gray_a.shape
    factor = min(1.0, np.sqrt(WORK_PIXELS / (height * width)))
    work_w, work_h = max(1, int(width * factor)), max(1, int(height * factor))
    work_a, to_work_a = resize_with_scale(gray_a, work_w, work_h)
    work_b, to_work_b = resize_with_scale(gray_b, work_w, work_h)
    texture = (image_texture(work_a), image_texture(work_b))
    caught = []
    if min(texture) < MIN_TEXTURE:
        caught.append((f"too little texture to trust the estimate (mean gradient {min(texture):.2f} gray levels/px, "
                       f"under {MIN_TEXTURE})", LowTextureWarning))
    short, long = min(height, width), max(height, width)
    estimable = short >= MIN_SIDE
    if not estimable:
        caught.append((f"images of {width}x{height} px are too small to estimate a homography (short side under "
                       f"{MIN_SIDE} px): the identity is returned", ShapeWarning))
    elif long > MAX_ASPECT * short:
        caught.append((f"images of {width}x{height} px are too elongated to trust the estimate (aspect ratio "
                       f"{long / short:.1f}:1, over {MAX_ASPECT:g}:1)", ShapeWarning))
    return {"work": (work_a, work_b), "to_work_a": to_work_a, "to_work_b": to_work_b, "texture": texture,
            "warnings": caught, "estimable": estimable}


def _similarity(width, height, angle, scale):
    """The rotation by ``angle`` degrees and zoom by ``scale`` about the centre of a ``width`` x ``height`` image."""
    radians = np.deg2rad(angle)
    cos, sin = scale * np.cos(radians), scale * np.sin(radians)
    centre = np.array([width / 2.0, height / 2.0])
    shift = centre - np.array([[cos, -sin], [sin, cos]]) @ centre
    return np.array([[cos, -sin, shift[0]], [sin, cos, shift[1]], [0.0, 0.0, 1.0]])


def _try_hypotheses(model, gray_a, gray_b, rho, settings, batch_size, h_ab, info, keep=2):
    """A multi-hypothesis start for large rotation and zoom; returns the better of ``h_ab`` and the best
    hypothesis refined, updating ``info`` (``chosen`` becomes ``"hypothesis"`` when it wins).

    At a short side of :data:`HYPOTHESIS_SIDE`, B is warped into A's frame by every rotation x zoom,
    the network measures what is left (two passes, all hypotheses in one batch), and the ``keep``
    best by alignment score are refined at the working resolution by :func:`align_images`.
    """
    height, width = gray_a.shape
    factor = min(1.0, HYPOTHESIS_SIDE / min(height, width))
    small_a, to_small = resize_with_scale(gray_a, max(1, round(width * factor)), max(1, round(height * factor)))
    small_b, _ = resize_with_scale(gray_b, small_a.shape[1], small_a.shape[0])
    small_h, small_w = small_a.shape
    hypotheses = [(angle, scale, _similarity(small_w, small_h, angle, scale))
                  for angle in HYPOTHESIS_ANGLES for scale in HYPOTHESIS_SCALES]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    moved = [(small_a, cv2.warpPerspective(small_b, start, (small_w, small_h), flags=flags))
             for _, _, start in hypotheses]
    residuals = coarse_homographies(model, moved, rho, passes=2, batch_size=batch_size)
    candidates = [start @ residual for (_, _, start), residual in zip(hypotheses, residuals)]
    screened = [alignment_score(small_a, small_b, candidate) for candidate in candidates]
    for index in np.argsort(screened)[::-1][:keep]:
        start = np.linalg.inv(to_small) @ candidates[index] @ to_small
        angle, scale, _ = hypotheses[index]
        h_ab = _keep_if_better(gray_a, gray_b, start, settings, h_ab, info, "hypothesis",
                               hypothesis={"angle": angle, "scale": scale})
    return h_ab


def _keep_if_better(gray_a, gray_b, start, settings, h_ab, info, chosen, **extra):
    """``start`` refined by :func:`align_images`; returned, with ``info`` updated (``chosen``, its score,
    ``fallback`` and ``extra``), when it is not the identity and scores higher than ``info``'s chosen
    answer; else ``h_ab``, ``info`` unchanged."""
    found, aligned = align_images(gray_a, gray_b, start / start[2, 2], settings)
    score = aligned["scores"][aligned["chosen"]]
    if aligned["chosen"] == "identity" or score <= info["scores"][info["chosen"]]:
        return h_ab
    info.pop("hypothesis", None)
    info.update(chosen=chosen, fallback=aligned["fallback"], **extra)
    info["scores"][chosen] = score
    return found


@functools.cache
def _shipped_keypoints():
    """The shipped SuperPoint as a keypoint method, one per process: its network loads on first use
    (``checkpoints/superpoint/`` or ``$HNET_KERAS_SUPERPOINT`` as it is then) and stays loaded."""
    return SuperPointMethod()


def _try_keypoints(method, gray_a, gray_b, settings, h_ab, info):
    """The keypoint method's ``H_ab`` as one more start: refined by :func:`align_images` and returned when it
    scores higher than ``info``'s chosen answer (``chosen`` becomes ``"keypoints"``); else ``h_ab``."""
    try:
        start = np.asarray(method.homography(gray_a, gray_b), np.float64)
    except (EstimationFailed, cv2.error, np.linalg.LinAlgError):
        return h_ab  # too few keypoints or matches, or a degenerate fit: nothing to try
    if start.shape != (3, 3) or not np.all(np.isfinite(start)) or abs(start[2, 2]) < 1e-12:
        return h_ab
    return _keep_if_better(gray_a, gray_b, start, settings, h_ab, info, "keypoints")
