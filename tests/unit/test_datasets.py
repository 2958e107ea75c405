"""Evaluation-set readers, on tiny synthetic files with the real files' columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation import datasets
from routing.classify import load_corpus
from tests.helpers import write_shared


def test_held_out_is_the_test_split() -> None:
    held = datasets.held_out()
    assert list(held.examples) == load_corpus("test", "short")
    assert held.label_of("noise") == "noise"
    long = datasets.held_out_long()
    assert list(long.examples) == load_corpus("test", "long")
    assert sorted(held.examples + long.examples) == sorted(load_corpus("test"))
    assert all(len(text) <= 60 for text, _ in held.examples)
    assert all(len(text) > 60 for text, _ in long.examples)


def test_newport_keeps_mapped_categories_with_text(tmp_path: Path) -> None:
    write_shared(tmp_path)
    newport = datasets.newport(tmp_path)
    assert newport.examples == (
        ("hole", "pothole / road damage"),
        ("lamp out", "street light"),
        ("drain clogged", "storm drain"),
    )
    assert newport.skipped == 3
    assert newport.label_of("road_damage") == "pothole / road damage"
    assert newport.label_of("bin_overflow") == newport.label_of("exposed_garbage")
    assert newport.label_of("rider_need") == datasets.NO_COUNTERPART


def test_newport_halves_split_by_id_parity(tmp_path: Path) -> None:
    write_shared(tmp_path)
    dev = datasets.newport(tmp_path, "dev")
    test = datasets.newport(tmp_path, "test")
    assert dev.name == "newport-dev" and test.name == "newport-test"
    assert dev.examples == (("hole", "pothole / road damage"), ("drain clogged", "storm drain"))
    assert test.examples == (("lamp out", "street light"),)
    assert sorted(dev.examples + test.examples) == sorted(datasets.newport(tmp_path).examples)
    assert datasets.load("newport-test", tmp_path).examples == test.examples


def test_newport_groups_are_all_reachable_from_our_codes() -> None:
    assert set(datasets.NEWPORT_GROUPS.values()) <= set(datasets.GROUP_OF_CODE.values())


def test_multicity_matches_request_type_names(tmp_path: Path) -> None:
    write_shared(tmp_path)
    multicity = datasets.multicity(tmp_path)
    assert multicity.examples == (("dark", "street light"), ("couch dumped", "trash / garbage"))
    assert multicity.skipped == 1
    assert datasets.multicity_group("Potholes") == "pothole / road damage"
    assert datasets.multicity_group("Water Leak") is None


def test_teddycup_department_level(tmp_path: Path) -> None:
    write_shared(tmp_path)
    teddy = datasets.teddycup(tmp_path)
    assert teddy.examples == (("路灯不亮 小区门口路灯坏了", "城乡建设"), ("工地噪音", "环境保护"))
    assert teddy.skipped == 1
    assert teddy.label_of("noise") == "环境保护"
    assert teddy.label_of("street_light") == "城乡建设"
    assert teddy.label_of("other") == datasets.NO_COUNTERPART
    titles = datasets.teddycup(tmp_path, title_only=True)
    assert titles.examples == (("路灯不亮", "城乡建设"),)


def test_every_code_but_other_has_a_department() -> None:
    codes = {code for _, code in load_corpus()}
    assert set(datasets.DEPARTMENT_OF_CODE) == codes - {"other"}


def test_available_and_load(tmp_path: Path) -> None:
    assert datasets.available(tmp_path) == (
        ["held-out", "held-out-long"],
        ["newport", "newport-dev", "newport-test", "multicity", "teddycup", "teddycup-title"],
    )
    write_shared(tmp_path)
    found, missing = datasets.available(tmp_path)
    assert found == list(datasets.SET_NAMES) and missing == []
    assert datasets.load("newport", tmp_path).name == "newport"
    with pytest.raises(ValueError):
        datasets.load("nope", tmp_path)


def test_default_folder_is_next_to_the_project() -> None:
    expected = datasets.PROJECT_ROOT.parent / "shared" / "data"
    assert expected == datasets.DEFAULT_DATA_DIR
