"""The decode-once image cache in shards (VAE_model/shards.py, data.image_cache): the same pixels as one
array, indexed like the memory map it replaces, rebuilt when stale, never used half-built, resumed
after an interruption."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_cutouts

from VAE_model import data
from VAE_model.shards import BUILDING, META, IncompleteShardsError, open_shards, write_shards

N, SIZE, PER_SHARD = 13, 16, 5      # 13 images in shards of 5: 5 + 5 + 3


@pytest.fixture
def image_list(tmp_path):
    paths = make_cutouts(tmp_path / "images", N, SIZE)
    listed = tmp_path / "train.txt"
    listed.write_text("".join(f"{p}\n" for p in paths))
    return listed, paths


def one_array(paths) -> np.ndarray:
    """What the one-file cache held: every image through the one loader, quantised."""
    return np.stack([data.quantise_uint8(data.load_image(p, SIZE)) for p in paths])


def build(listed, tmp_path, **kwargs):
    return data.image_cache(listed, SIZE, tmp_path / "cache", workers=1, progress=False,
                            images_per_shard=PER_SHARD, **kwargs)


def test_shards_hold_the_pixels_of_the_one_array_cache(image_list, tmp_path):
    listed, paths = image_list
    cache = build(listed, tmp_path)
    folder = tmp_path / "cache" / f"train_{SIZE}px"
    assert sorted(p.name for p in folder.iterdir()) == [META, "shard_00000.npy", "shard_00001.npy", "shard_00002.npy"]
    assert [len(np.load(folder / f"shard_{k:05d}.npy", mmap_mode="r")) for k in range(3)] == [5, 5, 3]
    assert (len(cache), cache.shape, cache.dtype) == (N, (N, 3, SIZE, SIZE), np.uint8)
    assert np.array_equal(np.asarray(cache), one_array(paths))


def test_indexing_follows_numpy_across_shard_boundaries(tmp_path):
    expected = np.random.default_rng(0).integers(0, 256, (N, 3, 4, 4), dtype=np.uint8)
    cache = write_shards(tmp_path / "c", {}, lambda start, stop: iter(expected[start:stop]), N, (3, 4, 4), PER_SHARD)
    keys = [0, 4, 5, 12, -1, np.int64(7), slice(None), slice(3, 11), slice(None, None, -2), [9, 2, 2, 12],
            np.array([12, 0, 5, 4, 6]), np.sort(np.array([11, 1, 6])), np.array([[1, 9], [10, 3]]),
            expected[:, 0, 0, 0] > 100, np.array([], dtype=int), (np.array([4, 9, 2]), 1), (3, 2),
            (slice(4, 9), 0, 1), (np.array([1, 7]), slice(None), 3), Ellipsis]
    for key in keys:
        got, want = cache[key], expected[key]
        assert isinstance(got, np.ndarray) and got.shape == want.shape and np.array_equal(got, want), key
    for bad in (13, -14, [0, 13], np.array([0.5])):
        with pytest.raises(IndexError):
            cache[bad]
    assert np.array_equal(np.stack(list(cache)), expected)
    import pickle

    assert np.array_equal(pickle.loads(pickle.dumps(cache))[[12, 0]], expected[[12, 0]])   # DataLoader workers


def test_a_changed_image_rebuilds_and_an_unchanged_list_reuses(image_list, tmp_path):
    listed, paths = image_list
    first = np.asarray(build(listed, tmp_path))
    meta = tmp_path / "cache" / f"train_{SIZE}px" / META
    stamp = meta.stat().st_mtime_ns
    assert np.array_equal(np.asarray(build(listed, tmp_path)), first) and meta.stat().st_mtime_ns == stamp
    make_cutouts(tmp_path / "other", N, SIZE, seed=7)
    replaced = sorted((tmp_path / "other").glob("*.fits"))[7]
    replaced.replace(paths[7])                               # another galaxy under the same name
    again = np.asarray(build(listed, tmp_path))
    assert meta.stat().st_mtime_ns != stamp
    assert np.array_equal(again[7], one_array([paths[7]])[0]) and not np.array_equal(again[7], first[7])
    assert np.array_equal(np.delete(again, 7, 0), np.delete(first, 7, 0))


def test_an_interrupted_build_is_not_used_and_resumes_with_the_shards_it_wrote(image_list, tmp_path, monkeypatch):
    listed, paths = image_list
    folder = tmp_path / "cache" / f"train_{SIZE}px"
    real, decoded = data._load_uint8, []

    def failing(job):   # the build stops (Ctrl-C, a killed job) on image 11, in the third shard
        if len(decoded) == 11:
            raise KeyboardInterrupt
        decoded.append(job[0])
        return real(job)

    monkeypatch.setattr(data, "_load_uint8", failing)
    with pytest.raises(KeyboardInterrupt):
        build(listed, tmp_path)
    assert not (folder / META).exists() and (folder / BUILDING).exists()
    assert sorted(p.name for p in folder.glob("shard_*")) == ["shard_00000.npy", "shard_00001.npy"]
    assert not list(folder.glob(".*.tmp")), "temporary shard left behind"
    with pytest.raises(IncompleteShardsError, match="meta.json"):
        open_shards(folder)                                # a reader never takes it as complete
    decoded.clear()
    monkeypatch.setattr(data, "_load_uint8", real)
    resumed_from = []
    monkeypatch.setattr(data, "_load_uint8", lambda job: (resumed_from.append(job[0]), real(job))[1])
    cache = build(listed, tmp_path)
    assert resumed_from == [str(p) for p in paths[10:]]     # the two whole shards were kept
    assert np.array_equal(np.asarray(cache), one_array(paths))
    assert (folder / META).exists() and not (folder / BUILDING).exists()


def test_a_half_built_cache_of_other_images_is_not_resumed(image_list, tmp_path):
    listed, paths = image_list
    folder = tmp_path / "cache" / f"train_{SIZE}px"
    build(listed, tmp_path)
    # as an interrupted build of other images leaves it: shards, building.json, no meta.json
    meta = json.loads((folder / META).read_text())
    (folder / META).unlink()
    meta["images"]["stat_sha1"] = "other images"
    (folder / BUILDING).write_text(json.dumps(meta))
    np.save(folder / "shard_00000.npy", np.zeros((PER_SHARD, 3, SIZE, SIZE), np.uint8))
    assert np.array_equal(np.asarray(build(listed, tmp_path)), one_array(paths))


def test_a_missing_shard_is_rebuilt_and_a_one_file_cache_of_before_is_removed(image_list, tmp_path):
    listed, paths = image_list
    old = tmp_path / "cache" / f"train_{SIZE}px.npy"          # CACHE_VERSION 2: one .npy + .json
    old.parent.mkdir()
    np.save(old, np.zeros((N, 3, SIZE, SIZE), np.uint8))
    old.with_suffix(".json").write_text("{}")
    build(listed, tmp_path)
    assert not old.exists() and not old.with_suffix(".json").exists()
    (tmp_path / "cache" / f"train_{SIZE}px" / "shard_00001.npy").unlink()
    assert np.array_equal(np.asarray(build(listed, tmp_path)), one_array(paths))


def test_shard_size_follows_the_byte_budget(monkeypatch):
    assert data.shard_images(256) == 5461 and data.shard_images(64) == 87381      # 1 GiB of (3, S, S) uint8
    monkeypatch.setenv(data.SHARD_MB_ENV, "3")
    assert data.shard_images(256) == 16

