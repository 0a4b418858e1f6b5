import numpy as np
import pytest

from workstation.core.registration import RegistrationBook, registration_from_points, space_key


def test_translation_from_two_clicks_and_its_inverse():
    r = registration_from_points("A", (1, 2, 3), "B", (4, 2, -7))
    assert r.translation == (3.0, 0.0, -10.0)
    assert np.allclose(r.apply((0, 0, 0)), (3, 0, -10))
    assert r.inverse().translation == (-3.0, -0.0, 10.0)
    with pytest.raises(ValueError, match="same frame of reference"):
        registration_from_points("A", (0, 0, 0), "A", (1, 1, 1))
    with pytest.raises(ValueError, match="patient space"):
        registration_from_points("", (0, 0, 0), "B", (1, 1, 1))


def test_book_finds_either_direction_replaces_and_persists(tmp_path):
    path = tmp_path / "reg.json"
    book = RegistrationBook(path)
    seen = []
    book.subscribe(seen.append)
    book.set(registration_from_points("A", (0, 0, 0), "B", (0, 0, 5)))
    assert book.get("B", "A").translation == (0.0, 0.0, -5.0)
    book.set(registration_from_points("B", (0, 0, 0), "A", (0, 0, 2)))  # redone the other way
    assert len(book) == 1 and book.get("A", "B").translation == (0.0, 0.0, -2.0)
    assert len(seen) == 2
    again = RegistrationBook(path)
    assert again.get("A", "B").translation == (0.0, 0.0, -2.0)
    assert again.get("A", "C") is None and again.get("A", "A") is None
    again.forget("B", "A")
    assert RegistrationBook(path).get("A", "B") is None


def test_damaged_file_is_set_aside_not_overwritten(tmp_path):
    path = tmp_path / "reg.json"
    path.write_text("{not json")
    book = RegistrationBook(path)
    assert len(book) == 0
    assert (tmp_path / "reg.json.damaged").read_text() == "{not json"


def test_space_key_falls_back_to_the_series():
    assert space_key("1.2", "9.9") == "1.2"
    assert space_key("", "9.9") == "series:9.9"
    assert space_key("", "") == ""
