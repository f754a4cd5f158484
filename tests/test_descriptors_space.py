"""The descriptor space: pyramids of dense maps, zoomed pairs, matching over scale pairs."""

import cv2
import numpy as np
import pytest
import skimage.data

from hnet_keras.features import descriptor_space as space
from hnet_keras.features import pck
from hnet_keras.geometry import warp_points


def test_zoom_homography_zooms_about_its_centre():
    h = space.zoom_homography((200, 100), 2.0, angle=90.0, centre=(50.0, 40.0))
    np.testing.assert_allclose(warp_points(h, np.array([[50.0, 40.0], [60.0, 40.0]])), [[100, 50], [100, 70]],
                               atol=1e-9)


def test_zoom_pairs_show_the_same_content_where_the_homography_says():
    image = cv2.resize(skimage.data.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    pairs = space.zoom_pairs([image], zooms=(2.0,), angle=0.0, seed=4)
    (pair,) = pairs
    assert pair.kind == "zoom" and pair.name == "zoom_0/x2"
    points_a = np.array([[x, y] for x in range(50, 110, 7) for y in range(40, 80, 7)], np.float64)
    points_b = warp_points(pair.homography, points_a)
    seen = np.all((points_b >= 2) & (points_b <= (157, 117)), axis=1)
    a = image[points_a[seen, 1].astype(int), points_a[seen, 0].astype(int)].astype(float)
    b = pair.image_b[np.rint(points_b[seen, 1]).astype(int), np.rint(points_b[seen, 0]).astype(int)].astype(float)
    assert seen.sum() > 10 and np.median(np.abs(a - b)) < 10
    with pytest.raises(ValueError, match="zoom factors"):
        space.zoom_pairs([image], zooms=(0.0,))


def test_the_space_describes_a_pyramid_in_image_coordinates():
    image = cv2.resize(skimage.data.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    daisy_space = space.DescriptorSpace(pck.DaisyDescriptors(), scales=(1.0, 0.5))
    assert daisy_space.name == "daisy_space"
    maps = daisy_space.maps(image)
    assert [m.scale for m in maps] == [1.0, 0.5] and [m.spacing for m in maps] == [4, 8]
    assert maps[1].descriptors.shape[:2] == pck.DaisyDescriptors().dense(cv2.resize(image, (80, 60))).descriptors.shape[:2]
    features = daisy_space.at(image, maps, np.array([[40.0, 30.0], [100.0, 60.0]]))
    assert features.shape == (2, 2, 104)


def test_the_space_beats_a_single_scale_on_a_zoomed_pair():
    image = cv2.resize(skimage.data.camera(), (256, 192), interpolation=cv2.INTER_AREA)
    pairs = space.zoom_pairs([image], zooms=(2.0,), angle=0.0, seed=0)
    daisy = pck.DaisyDescriptors()
    results = pck.evaluate_pck(pairs, [daisy, space.DescriptorSpace(daisy)], points=300, long_side=256,
                               protocols=("seed",), progress=False)
    table = pck.pck_table(results)
    assert table["daisy_space"]["zoom"]["seed"]["3"] > table["daisy"]["zoom"]["seed"]["3"] + 0.1
    used = space.scale_pairs_used(results["daisy_space"], (1.0, 0.71, 0.5))
    assert next(iter(used)) == "1->0.5"  # B is twice as large: B at half size matches A at full size
