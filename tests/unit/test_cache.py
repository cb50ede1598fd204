"""The inference result cache: SQLite + safetensors, checksummed rows, LRU eviction, shared by processes."""

import multiprocessing as mp
import sqlite3

import pytest
import torch

from truthtrace.inference.cache import ResultCache, cache_key

PARTS = {"model": "abc", "prompt_ids": [1, 2, 3], "decoding": {"max_new_tokens": 8, "do_sample": False}, "seed": 0}


def value_and_tensors(i: int):
    g = torch.Generator().manual_seed(i)
    return {"answer": f"answer {i}", "scores": {"probe": 0.25 * i}}, {"risk": torch.rand(5, generator=g),
                                                                     "ids": torch.arange(i + 1)}


def test_round_trip_memory_and_disk(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    value, tensors = value_and_tensors(1)
    key = cache_key(PARTS)
    assert cache.get(key) is None
    cache.put(key, value, tensors)
    assert cache.get(key)[0] == value
    cache.close()
    again = ResultCache(tmp_path / "c.sqlite")  # a new process would see the same
    got_value, got_tensors = again.get(key)
    assert got_value == value and got_tensors.keys() == tensors.keys()
    for k in tensors:
        assert torch.equal(got_tensors[k], tensors[k])
    stats = again.stats()
    assert (stats["rows"], stats["hits"], stats["misses"]) == (1, 2, 1)


def test_key_depends_on_every_part():
    base = cache_key(PARTS)
    assert cache_key(dict(reversed(list(PARTS.items())))) == base  # order of the parts does not matter
    for field, other in (("model", "abd"), ("prompt_ids", [1, 2, 4]), ("seed", 1),
                         ("decoding", {"max_new_tokens": 9, "do_sample": False})):
        assert cache_key({**PARTS, field: other}) != base


@pytest.mark.parametrize("damage", ["UPDATE results SET value = '{\"answer\": \"forged\"}'",
                                    "UPDATE results SET tensors = X'00ff'", "UPDATE results SET format = 99"])
def test_a_corrupted_or_foreign_row_is_never_returned(tmp_path, damage):
    cache = ResultCache(tmp_path / "c.sqlite", memory_items=0)
    key = cache_key(PARTS)
    cache.put(key, *value_and_tensors(2))
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        db.execute(damage)
    assert cache.get(key) is None
    stats = cache.stats()
    assert (stats["corrupt"], stats["rows"]) == (1, 0)


def test_not_a_cache_file_names_the_file(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"my thesis, not a database" * 100)
    with pytest.raises(ValueError, match="notes.sqlite: not a truthtrace cache"):
        ResultCache(path)
    assert path.read_bytes().startswith(b"my thesis")


def test_size_limit_evicts_least_recently_used(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite", max_bytes=600, memory_items=0)
    keys = [cache_key({**PARTS, "seed": i}) for i in range(6)]
    for i, key in enumerate(keys[:3]):
        cache.put(key, *value_and_tensors(i))
    cache.get(keys[0])  # now keys[1] is the least recently used
    for i, key in enumerate(keys[3:], 3):
        cache.put(key, *value_and_tensors(i))
    stats = cache.stats()
    assert stats["bytes"] <= 600 and stats["evictions"] >= 1
    assert cache.get(keys[1]) is None and cache.get(keys[-1]) is not None


def test_stats_and_clear(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    for i in range(3):
        cache.put(cache_key({**PARTS, "seed": i}), *value_and_tensors(i))
    assert cache.stats()["rows"] == 3
    assert cache.clear() == 3
    stats = cache.stats()
    assert (stats["rows"], stats["bytes"], stats["hits"], stats["memory_items"]) == (0, 0, 0, 0)


def _writer(path: str, start: int) -> None:
    cache = ResultCache(path, memory_items=0)
    for i in range(start, start + 40):
        cache.put(cache_key({**PARTS, "seed": i}), *value_and_tensors(i))
        cache.get(cache_key({**PARTS, "seed": i - 1}))


def test_two_processes_share_the_cache(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ResultCache(path).close()
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, s)) for s in (0, 40)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = ResultCache(path)
    assert cache.stats()["rows"] == 80 and cache.stats()["corrupt"] == 0
    assert all(cache.get(cache_key({**PARTS, "seed": i}))[0] == value_and_tensors(i)[0] for i in range(80))


def test_memory_only_cache():
    cache = ResultCache(None, memory_items=2)
    for i in range(3):
        cache.put(str(i), *value_and_tensors(i))
    assert cache.get("0") is None and cache.get("2")[0]["answer"] == "answer 2"
    assert cache.stats()["path"] is None


def test_a_value_without_tensors_round_trips(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite", memory_items=0)
    cache.put("k", {"answer": "only JSON"})
    assert cache.get("k") == ({"answer": "only JSON"}, {}) and cache.stats()["corrupt"] == 0
