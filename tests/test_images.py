import warnings

import cv2
import numpy as np
import pytest

from hnet_keras.data.images import embedded_photo_paths, list_images, read_grayscale


def test_embedded_photos_are_real_and_split():
    every, train, test = (embedded_photo_paths(s) for s in ("all", "train", "test"))
    assert len(every) >= 10 and set(train).isdisjoint(test) and set(train) | set(test) == set(every)
    for path in every:
        gray, reason = read_grayscale(path)
        assert reason is None and gray.dtype == np.uint8 and gray.ndim == 2 and min(gray.shape) >= 190


def test_list_images_finds_every_extension_in_any_case(tmp_path):
    image = np.full((8, 8), 9, np.uint8)
    names = ["a.jpg", "sub/b.JPEG", "sub/deeper/c.Png", "d.bmp", "e.TIF", "f.tiff"]
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ext = ".png" if path.suffix.lower() in (".png",) else path.suffix.lower()
        path.write_bytes(cv2.imencode(".jpg" if ext in (".jpg", ".jpeg") else ext, image)[1].tobytes())
    (tmp_path / "notes.txt").write_text("not an image")
    found = list_images(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == sorted(names)


def test_list_images_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
    with pytest.raises(ValueError, match=str(tmp_path)):
        list_images(tmp_path)


def test_colour_alpha_and_16_bit_images_are_converted(tmp_path):
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[..., 2] = 200  # red
    bgra = np.dstack([bgr, np.full((20, 30), 255, np.uint8)])
    deep = np.full((20, 30), 65535, np.uint16)
    deep[:10] = 257 * 100
    for name, array in (("bgr.png", bgr), ("bgra.png", bgra), ("deep.png", deep)):
        cv2.imwrite(str(tmp_path / name), array)
    expected_red = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for name in ("bgr.png", "bgra.png"):
        gray, reason = read_grayscale(tmp_path / name)
        assert reason is None and gray.shape == (20, 30)
        np.testing.assert_array_equal(gray, expected_red)
    gray, _ = read_grayscale(tmp_path / "deep.png")
    assert gray.dtype == np.uint8 and gray[0, 0] == 100 and gray[-1, -1] == 255


def test_unreadable_files_are_reported_not_raised(tmp_path):
    (tmp_path / "fake.jpg").write_text("this is not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("fake.jpg", "empty.png", "absent.png"):
        with pytest.warns(UserWarning, match=name):
            gray, reason = read_grayscale(tmp_path / name)
        assert gray is None and reason.startswith("unreadable")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_grayscale(tmp_path / "fake.jpg", warn=False)[0] is None


def test_split_is_fixed_by_file_name_and_disjoint(tmp_path):
    from hnet_keras.data.images import split_images

    names = [f"photo_{i:04d}.jpg" for i in range(400)]
    split = split_images([tmp_path / n for n in names], validation=0.1, test=0.2)
    assert sum(len(v) for v in split.values()) == 400
    assert 50 < len(split["test"]) < 110 and 20 < len(split["validation"]) < 65
    # the same file lands on the same side whatever else is in the list, and wherever it lives
    fewer = split_images([tmp_path / "elsewhere" / n for n in names[::3]], validation=0.1, test=0.2)
    assert {p.name for p in fewer["test"]} == {p.name for p in split["test"]} & set(names[::3])
    with pytest.raises(ValueError, match="validation"):
        split_images([], validation=0.6, test=0.5)
