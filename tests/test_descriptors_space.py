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


def test_a_rotated_map_samples_at_the_rotated_point():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(12, 16, 8)).astype(np.float32)
    rotation, _ = space.rotation_canvas((100, 80), 30.0)
    resize = np.diag([0.5, 0.5])
    transform = np.hstack([resize @ rotation[:, :2], resize @ rotation[:, 2:]])
    rotated = pck.DenseMap(values, stride=4, offset=2, transform=transform)
    plain = pck.DenseMap(values, stride=4, offset=2)
    points = rng.uniform(20, 60, size=(50, 2))
    moved = points @ transform[:, :2].T + transform[:, 2]
    np.testing.assert_allclose(rotated.sample(points), plain.sample(moved), atol=1e-6)
    # The cells' image points go back through the transform onto the map's own cell centres.
    np.testing.assert_allclose(rotated.positions() @ transform[:, :2].T + transform[:, 2], plain.positions(), atol=1e-9)
    np.testing.assert_allclose(rotated.sample(rotated.positions()),
                               pck.normalise_descriptors(values.reshape(-1, 8)), atol=1e-5)
    assert rotated.spacing == pytest.approx(8.0)


def test_rotation_canvas_keeps_the_whole_image_and_its_centre():
    matrix, canvas = space.rotation_canvas((100, 60), 90.0)
    assert canvas == (60, 100)
    corners = np.array([[0.0, 0.0], [99.0, 0.0], [0.0, 59.0], [99.0, 59.0], [49.5, 29.5]])
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    assert np.all(moved >= -1e-9) and np.all(moved <= np.array(canvas) - 1 + 1e-9)
    np.testing.assert_allclose(moved[-1], [29.5, 49.5], atol=1e-9)


def test_no_angles_give_exactly_the_scale_space():
    image = cv2.resize(skimage.data.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    daisy = pck.DaisyDescriptors()
    old = pck.Describer.maps(space.DescriptorSpace(daisy, scales=(1.0, 0.5)), image)
    new = space.DescriptorSpace(daisy, scales=(1.0, 0.5), angles=(0.0,)).maps(image)
    assert len(old) == len(new) == 2
    for a, b in zip(old, new):
        assert b.transform is None and a.scale == b.scale and a.stride == b.stride and a.offset == b.offset
        np.testing.assert_array_equal(a.descriptors, b.descriptors)
    assert space.DescriptorSpace(daisy, scales=(1.0, 0.5)).labels == ["1", "0.5"]


@pytest.fixture(scope="module")
def learned():
    from hnet_keras.features.descriptors import load_descriptor_net

    return pck.LearnedDescriptors(load_descriptor_net())


def test_the_rotation_space_beats_a_single_scale_on_a_rotated_pair(learned):
    from hnet_keras.data.images import embedded_photo_paths

    image = cv2.imread(str(embedded_photo_paths("test")[0]), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(image, (256, 192), interpolation=cv2.INTER_AREA)
    homography = space.zoom_homography((256, 192), 1.0, angle=45.0)
    pair = pck.DescriptorPair("rotated_45", image, cv2.warpPerspective(image, homography, (256, 192)), homography)
    rotations = space.DescriptorSpace(learned, scales=(1.0,), angles=(-22.5, 0.0, 22.5), name="rotations")
    assert len(rotations.maps(image)) == 3 and rotations.labels == ["1@-22.5", "1@0", "1@22.5"]
    results = pck.evaluate_pck([pair], [learned, rotations], points=200, long_side=256, protocols=("seed",),
                               progress=False)
    table = pck.pck_table(results)
    assert table["rotations"]["all"]["seed"]["3"] > table["learned"]["all"]["seed"]["3"] + 0.3
    used = space.scale_pairs_used(results["rotations"], rotations)
    assert next(iter(used)) == "1@-22.5->1@22.5"  # A turned one way, B the other: 45 degrees between them
