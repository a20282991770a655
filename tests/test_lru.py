"""The bounded maps every cache is one of."""

from __future__ import annotations

from embedauth.lru import BoundedDict


def test_bounded_dict_is_emptied_when_full() -> None:
    memo: BoundedDict[str, int] = BoundedDict(3)
    for i in range(3):
        memo.put(f"k{i}", i)
    assert memo == {"k0": 0, "k1": 1, "k2": 2} and memo.get("k1") == 1
    memo.put("k3", 3)  # full: emptied first, so it never holds more than its bound
    assert memo == {"k3": 3}
    for i in range(10):
        memo.put(f"again{i}", i)
        assert len(memo) <= 3
