"""Refinement of a homography estimate by direct (ECC) alignment, coarse to fine, guarded.

A network's estimate is robust (it never fails outright) but coarse: a few pixels.
Direct alignment (``cv2.findTransformECC``) is the opposite: sub-pixel when started
near the truth, lost when started far from it (from the identity it fails on about
40% of the synthetic pairs). Started from the network's estimate, it gets both.

The refinement is guarded: when ECC raises, returns a non-finite or degenerate
homography, or moves any corner further than ``max_move`` pixels from where the
estimate put it, the estimate is kept and the reason counted as a *fallback*.

Direction (see :mod:`hnet_keras.geometry`): ``H_ab`` maps points of A to the points of
B showing the same content. ``findTransformECC(template=A, input=B)`` finds ``W`` with
``B(W x) ~ A(x)``, which is ``H_ab`` itself, so the estimate is passed and returned as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import patch_corners, warp_points
from .contract import EstimationFailed

__all__ = ["ECCSettings", "ecc_coarse_to_fine", "refine_homography", "image_texture", "MIN_TEXTURE",
           "alignment_score", "align_images", "MIN_ALIGNMENT_SCORE", "normalize_contrast", "CONTRAST_SIGMA",
           "FRAME_MARGIN", "SCORE_MARGIN"]

MIN_TEXTURE = 1.0
"""Mean gradient magnitude (gray levels per pixel) under which an image is too flat to align."""
FINEST_CAP_PIXELS = 250_000
"""Whole images over this many pixels run at most :data:`FINEST_ITERATIONS` ECC iterations at full
resolution (:func:`align_images`), where each iteration costs the most."""
FINEST_ITERATIONS = 10
"""See :data:`FINEST_CAP_PIXELS`. The finest level starts from the half-resolution level's converged
estimate: on 16 900x600 photo pairs (corners moved up to 20%, blur, noise and exposure changes),
10 iterations gave the same mean corner error as 50 (0.388 against 0.389 px) in two thirds of
the time (509 against 769 ms a pair on a loaded 2-core machine)."""
CONTRAST_SIGMA = 8.0
"""Gaussian sigma (px) of the local contrast normalisation whole-image alignment runs ECC on
(:func:`normalize_contrast`, :func:`align_images`). On 40 illumination pairs of the whole-image
classes (shading, gamma, brightness; ``network+ecc+hypotheses``), acc@3 rose from 0.75 to 0.95 and
acc@1 from 0.42 to 0.93; on 24 blur pairs acc@1 from 0.46 to 0.96; no motion, viewpoint, zoom +
rotation and JPEG stayed at or above their acc@3 (sigma 16: 0.97 and 0.88 on illumination)."""
CONTRAST_FLOOR = 2.0
"""Gray levels: the local standard deviation under which :func:`normalize_contrast` stops
amplifying (flat areas keep their small values instead of blown-up noise)."""
REFINED_MARGIN = 0.02
"""A refinement that converged within its bound is kept unless another candidate's alignment score
is higher by more than this (:func:`align_images`). On 72 whole-image pairs (blur, illumination,
viewpoint) and 20 ordinary 900x600 pairs, 2 refined estimates (0.23 and 0.80 px off) lost to the
network's start (8.2 and 6.9 px off) by 0.019 and 0.006 of score, on heavily blurred or shaded
images where the band-pass has little left to tell them apart; with this margin both are kept,
and on the 72 class pairs no other pair's acc@1 or acc@3 changed (margins 0.02 and 0.05 alike)."""
FRAME_MARGIN = 16
"""Pixels along image A's frame that whole-image alignment leaves out of ECC's template
(:func:`align_images`; scaled down with each pyramid level). Where B's content ends (the black of
a warped photo's uncovered part, or other content in a real pair), B's local contrast has a strong
response a few :data:`CONTRAST_SIGMA` wide that A cannot have; at the right alignment it lies
along A's frame, and on images with little texture elsewhere it pulls ECC off (a lone object on
a plain background: 3-5 px off instead of 0.6). Chosen on the whole-image classes drawn from the
*validation* photos (seed 1, 100 pairs a class): margins 8 and 16 tied at acc@3 (0.97-1.00, up
from 0.96-1.00 without), 16 ahead at 1 px (blur 0.99 against 0.93, zoom + rotation 0.98 against
0.96). With :data:`SCORE_MARGIN`, on the test photos' classes (seed 0): illumination acc@3 0.97 ->
0.99 and acc@1 0.94 -> 0.98, blur acc@1 0.93 -> 0.99, JPEG acc@3 1.00 -> 0.99 (one lone-object pair
at 4.5 px), no class slower."""
MIN_ALIGNMENT_SCORE = 0.2
"""Alignment score (:func:`alignment_score`) under which two aligned images are taken not to
show the same scene."""


@dataclass(frozen=True)
class ECCSettings:
    """How the refinement runs.

    Attributes:
        levels: pyramid levels (each half the previous size), coarsest first; the
            finest is the images' own resolution.
        min_side: no level smaller than this many pixels.
        iterations: ECC iterations per level at most.
        epsilon: ECC's convergence threshold (change of the correlation coefficient). On
            1,000 test pairs from the shipped network's estimates, 1e-3 gave a mean of 0.20 px
            in 2-3 ms a pair, 1e-4 0.18 px in about 5 ms.
        gauss_filter: size of the Gaussian smoothing ECC applies at every level.
        max_move: largest move of any corner, in pixels of the full images, from the
            starting estimate; ``None`` sets it to ``max_move_fraction`` of the short side.
        max_move_fraction: see ``max_move``. An eighth of the side (16 px on a 128 px
            patch) is three to four times a good network's typical corner error: started
            that close, ECC converges (on 300 photo pairs started ~5 px off: mean 0.12 px,
            1 fallback), so a larger move means it ran away.
        finest_iterations: ECC iterations at the finest level at most (``None``: ``iterations``).
        template_margin: pixels (at full resolution, halved with each pyramid level) along A's
            frame left out of ECC's template (a template mask), at most an eighth of a level's short
            side; 0 uses every pixel. See :data:`FRAME_MARGIN`.
        contrast_sigma: when set, ECC aligns the images' local contrast (:func:`normalize_contrast`
            with this sigma) instead of their gray levels. ECC's correlation coefficient already
            ignores one gain and offset over the whole image; this makes them local, so shading,
            gamma and vignetting that differ between the images no longer pull it off.
    """

    levels: int = 2
    min_side: int = 24
    iterations: int = 30
    epsilon: float = 1e-3
    gauss_filter: int = 3
    max_move: float | None = None
    max_move_fraction: float = 1.0 / 8
    finest_iterations: int | None = None
    contrast_sigma: float | None = None
    template_margin: float = 0.0


def _interior(shape, margin):
    """A uint8 mask of a ``shape`` image, 1 except within ``margin`` pixels of its frame (at most an
    eighth of its short side)."""
    margin = int(round(min(margin, min(shape) / 8)))
    mask = np.zeros(shape, np.uint8)
    mask[margin:shape[0] - margin, margin:shape[1] - margin] = 1
    return mask


def normalize_contrast(image, sigma=CONTRAST_SIGMA):
    """Local contrast normalisation: ``(x - G*x) / sqrt(G*(x - G*x)^2 + f^2)``.

    ``G*`` is a Gaussian blur of standard deviation ``sigma`` px and ``f`` is
    :data:`CONTRAST_FLOOR`. Each pixel becomes its difference from the local mean in units of
    the local standard deviation, so any change of gain and offset that is smooth over
    about ``sigma`` pixels (an illumination gradient, vignetting, a gamma curve, which is
    locally a gain) leaves it nearly unchanged.

    Args:
        image: (H, W) grayscale image, uint8 or float.
        sigma: Gaussian standard deviation in pixels.

    Returns:
        (H, W) float32, mostly within about -3..3.
    """
    image = np.asarray(image, np.float32)
    detail = image - cv2.GaussianBlur(image, (0, 0), sigma)
    spread = cv2.GaussianBlur(detail * detail, (0, 0), sigma)
    return detail / np.sqrt(spread + CONTRAST_FLOOR**2)


def image_texture(image):
    """Mean gradient magnitude of a grayscale image, in gray levels per pixel.

    A blank or nearly uniform image (under about 1) has nothing to align on: any
    method's answer on it is a guess.
    """
    image = np.asarray(image, np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return float(np.mean(np.sqrt(gx * gx + gy * gy)))


def _scaled(homography, factor):
    """The same map in coordinates multiplied by ``factor``: ``S H S^-1``."""
    scale = np.diag([factor, factor, 1.0])
    return scale @ homography @ np.diag([1.0 / factor, 1.0 / factor, 1.0])


def ecc_coarse_to_fine(image_a, image_b, start, settings):
    """ECC's ``H_ab`` (scaled so ``H[2, 2] = 1``) from ``start``, on a pyramid of ``settings.levels``.

    Shared with :class:`hnet_keras.estimators.baselines.ECCMethod`, which starts from the identity on
    whole images of different sizes, so the images need not match (A's size sets the levels).
    :func:`refine_homography` adds its checks of the inputs and of the result's move.

    Args:
        image_a, image_b: (H, W) uint8 grayscale images.
        start: (3, 3) float64 starting ``H_ab`` at full size, ``H[2, 2] = 1``.
        settings: an :class:`ECCSettings`.

    Raises:
        EstimationFailed: ECC did not converge or gave a non-finite homography.
    """
    if settings.contrast_sigma is not None:
        image_a = normalize_contrast(image_a, settings.contrast_sigma)
        image_b = normalize_contrast(image_b, settings.contrast_sigma)
    pyramid = [(image_a, image_b)]
    while len(pyramid) < settings.levels and min(pyramid[-1][0].shape) // 2 >= settings.min_side:
        pyramid.append((cv2.pyrDown(pyramid[-1][0]), cv2.pyrDown(pyramid[-1][1])))
    coarsest = len(pyramid) - 1
    warp = _scaled(start, 0.5**coarsest)
    for level in range(coarsest, -1, -1):
        a, b = pyramid[level]
        iterations = settings.iterations if level or settings.finest_iterations is None else settings.finest_iterations
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, settings.epsilon)
        try:
            if settings.template_margin > 0:
                _, found = cv2.findTransformECCWithMask(
                    a, b, _interior(a.shape, settings.template_margin / 2**level), np.ones(b.shape, np.uint8),
                    warp.astype(np.float32), cv2.MOTION_HOMOGRAPHY, criteria, settings.gauss_filter
                )
            else:
                _, found = cv2.findTransformECC(
                    a, b, warp.astype(np.float32), cv2.MOTION_HOMOGRAPHY, criteria, None, settings.gauss_filter
                )
        except cv2.error as error:
            raise EstimationFailed("ECC did not converge") from error
        if not np.all(np.isfinite(found)) or abs(found[2, 2]) < 1e-9:
            raise EstimationFailed("non-finite homography")
        warp = found.astype(np.float64) / found[2, 2]
        if level:
            warp = _scaled(warp, 2.0)
    return warp


def refine_homography(image_a, image_b, h_ab, settings=ECCSettings()):
    """Refine ``H_ab`` between two grayscale images by ECC, coarse to fine.

    Args:
        image_a, image_b: (H, W) uint8 images of one size (two patches, or two whole images).
        h_ab: (3, 3) starting estimate (A -> B), e.g. from a network.
        settings: an :class:`ECCSettings`.

    Returns:
        (3, 3) float64 refined ``H_ab`` (scaled so ``H[2, 2] = 1``).

    Raises:
        EstimationFailed: ECC did not converge, gave a non-finite or degenerate
            homography, or moved a corner more than the allowed bound.
    """
    image_a, image_b = np.asarray(image_a), np.asarray(image_b)
    if image_a.shape != image_b.shape or image_a.ndim != 2:
        raise ValueError(f"two grayscale images of one size are needed, got {image_a.shape} and {image_b.shape}")
    start = np.asarray(h_ab, np.float64)
    start = start / start[2, 2]
    warp = ecc_coarse_to_fine(image_a, image_b, start, settings)
    height, width = image_a.shape
    corners = patch_corners((width, height))
    try:
        moved = warp_points(np.linalg.inv(warp), corners) - warp_points(np.linalg.inv(start), corners)
    except np.linalg.LinAlgError as error:
        raise EstimationFailed("singular homography") from error
    bound = settings.max_move if settings.max_move is not None else settings.max_move_fraction * min(width, height)
    distance = np.sqrt(np.sum(moved**2, axis=-1))
    if not np.all(np.isfinite(distance)):
        raise EstimationFailed("degenerate homography")
    if np.max(distance) > bound:
        raise EstimationFailed("moved too far from the estimate")
    return warp


SCORE_BAND = (1.5, 5.0)
"""Gaussian sigmas (px) of the difference of Gaussians :func:`alignment_score` correlates."""
SCORE_MARGIN = 2 * SCORE_BAND[1]
"""Pixels along A's frame :func:`alignment_score` leaves out (at most an eighth of the short side):
B's band-pass where its content ends, as for :data:`FRAME_MARGIN`: two of the band-pass's wider
sigma. On an illumination pair of a lone object on a plain background, the truth scored 0.67 without
it, under a 3 px wrong answer's 0.72, and 0.97 with it."""


def _band_pass(image):
    image = np.asarray(image, np.float32)
    return cv2.GaussianBlur(image, (0, 0), SCORE_BAND[0]) - cv2.GaussianBlur(image, (0, 0), SCORE_BAND[1])


def alignment_score(image_a, image_b, h_ab):
    """How well ``h_ab`` aligns B onto A: the zero-mean normalized correlation of A's band-pass
    (a difference of Gaussians, :data:`SCORE_BAND`) with B's warped into A's frame, over the
    part of A that B covers, less :data:`SCORE_MARGIN` px along A's frame (1 is perfect, about 0
    for unrelated images; -1 when B covers less than a tenth of A).

    Normalized correlation ignores gain and offset, so a change of exposure between the
    images does not count against an estimate; the band-pass drops the large-scale shading
    two unrelated photos share. On 60 pairs of unrelated 640x480 test photos the answer
    :func:`~hnet_keras.estimators.predict.estimate_homography` chose scored 0.07 at most (plain
    intensity correlation: up to 0.57), on the 98 of ``benchmarks/bench_whole_images.py``'s 100
    ordinary pairs (blur, noise, exposure changes) it aligned within 3 px 0.72 at least.
    """
    image_a, image_b = np.asarray(image_a), np.asarray(image_b)
    return _filtered_score(_band_pass(image_a), _band_pass(image_b), h_ab)


def _filtered_score(filtered_a, filtered_b, h_ab):
    height, width = filtered_a.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # B(H_ab x) for every x of A
    try:
        warped = cv2.warpPerspective(filtered_b, np.asarray(h_ab, np.float64), (width, height), flags=flags,
                                     borderMode=cv2.BORDER_REPLICATE)
        covered = cv2.warpPerspective(np.ones(filtered_b.shape, np.uint8), np.asarray(h_ab, np.float64),
                                      (width, height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP).astype(bool)
    except cv2.error:
        return -1.0
    covered &= _interior(covered.shape, SCORE_MARGIN).astype(bool)
    if covered.sum() < 0.1 * covered.size:
        return -1.0
    a, b = filtered_a[covered], warped[covered]
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else -1.0


def align_images(image_a, image_b, h_start, settings=None):
    """Whole-image alignment from a starting estimate: refine, then keep the best candidate.

    The candidates are the refined estimate (when the refinement succeeds), the start
    itself and the identity; the one with the highest :func:`alignment_score` is
    returned, except that the refined one is kept unless another scores higher by more than
    :data:`REFINED_MARGIN`. So a poor start never makes the answer worse than doing nothing.

    Args:
        image_a, image_b: (H, W) uint8 images of one size.
        h_start: (3, 3) starting ``H_ab``.
        settings: :class:`ECCSettings`; the default runs enough pyramid levels for the
            coarsest to be about 120 px on its short side, 50 iterations a level (at most
            :data:`FINEST_ITERATIONS` at full resolution over :data:`FINEST_CAP_PIXELS`), on the
            images' local contrast (:data:`CONTRAST_SIGMA`), leaving :data:`FRAME_MARGIN` px along
            A's frame out of the template.

    Returns:
        ``(h_ab, details)``: the chosen homography and a dict with ``chosen``
        (``"refined"``, ``"start"`` or ``"identity"``), ``scores`` and ``fallback``
        (the refinement's failure reason, or ``None``).
    """
    if settings is None:
        levels = 1 + max(0, int(np.floor(np.log2(min(image_a.shape) / 120.0))))
        finest = FINEST_ITERATIONS if image_a.size > FINEST_CAP_PIXELS else None
        settings = ECCSettings(levels=max(levels, 2), iterations=50, epsilon=1e-4, finest_iterations=finest,
                               contrast_sigma=CONTRAST_SIGMA, template_margin=FRAME_MARGIN)
    # On a tie (a blank image scores every candidate alike) the first wins: doing nothing.
    candidates, fallback = {"identity": np.eye(3)}, None
    try:
        candidates["refined"] = refine_homography(image_a, image_b, h_start, settings)
    except EstimationFailed as failure:
        fallback = failure.reason
    candidates["start"] = np.asarray(h_start, np.float64) / h_start[2, 2]
    filtered_a, filtered_b = _band_pass(image_a), _band_pass(image_b)
    scores = {name: _filtered_score(filtered_a, filtered_b, h) for name, h in candidates.items()}
    chosen = max(scores, key=scores.get)
    if "refined" in scores and scores["refined"] >= scores[chosen] - REFINED_MARGIN:
        chosen = "refined"
    return candidates[chosen], {"chosen": chosen, "scores": scores, "fallback": fallback}
