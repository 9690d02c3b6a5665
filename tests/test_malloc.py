"""cfrna._malloc: the glibc allocator settings of the streaming BAM reader and of the index build."""

from __future__ import annotations

import platform

import pytest

from cfrna import _malloc


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def fake(param, value):
        seen.append((param, value))
        return True

    monkeypatch.setattr(_malloc, "_mallopt", fake)
    monkeypatch.setattr(_malloc, "_streaming", False)
    return seen


def test_index_build_threshold_then_streaming_threshold_again(calls):
    assert _malloc.bound_for_streaming() is True
    assert calls == [(_malloc.M_MMAP_THRESHOLD, 1 << 20), (_malloc.M_ARENA_MAX, 2)]
    calls.clear()
    with _malloc.default_mmap_threshold():
        assert calls == [(_malloc.M_MMAP_THRESHOLD, 128 * 1024)]
    # cfrna run counts in the same process after building the index: the streaming setting is back
    assert calls[-1] == (_malloc.M_MMAP_THRESHOLD, 1 << 20)


def test_without_streaming_setting_the_default_threshold_stays(calls):
    with _malloc.default_mmap_threshold():
        pass
    assert calls == [(_malloc.M_MMAP_THRESHOLD, 128 * 1024)]


def test_restored_after_an_error(calls):
    _malloc.bound_for_streaming()
    calls.clear()
    with pytest.raises(RuntimeError), _malloc.default_mmap_threshold():
        raise RuntimeError("index build failed")
    assert calls[-1] == (_malloc.M_MMAP_THRESHOLD, 1 << 20)


def test_real_mallopt_and_the_opt_out(monkeypatch):
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert _malloc._mallopt(_malloc.M_MMAP_THRESHOLD, _malloc.STREAMING_MMAP_THRESHOLD) is True
    monkeypatch.setenv("CFRNA_NO_MALLOPT", "1")
    assert _malloc._mallopt(_malloc.M_MMAP_THRESHOLD, _malloc.STREAMING_MMAP_THRESHOLD) is False
