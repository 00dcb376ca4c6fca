"""nnref.fast.knn_bytes: exact KNN in bytes — against an int64 brute force (many ties), the float product against
_int_mm, and scikit-learn's brute force on real MNIST."""

from __future__ import annotations

import pytest
import torch

from nnref.fast import knn_bytes as kb
from nnref.knn import vote


def _bytes(shape, levels, g):
    """uint8 values on only ``levels`` grey levels: few levels, many equal distances."""
    step = 255 // (levels - 1)
    return (torch.randint(0, levels, shape, generator=g) * step).to(torch.uint8)


@pytest.mark.parametrize("path", kb.PATHS)
@pytest.mark.parametrize("seed", range(6))
def test_equals_int64_brute_force_with_many_ties(path, seed):
    g = torch.Generator().manual_seed(seed)
    n, m, p = 300 + 37 * seed, 41, 5 + 7 * seed
    levels = (2, 3, 256, 2, 17, 256)[seed]
    R, Q = _bytes((n, p), levels, g), _bytes((m, p), levels, g)
    if seed % 2:
        R[:, : p // 3] = 9  # pixels equal in every record: left out of the products, added back per query
        R[50:60] = R[0]  # duplicate records: equal distances, the earlier index first
    for k in (1, 3, 8):
        ref_d, ref_i = kb.brute_force(R, Q, k)
        for block, group in ((64, 8), (100, 4), (2048, 32), (37, 4), (4, 2)):
            d, i = kb.kneighbors(R, Q, k, path=path, chunk_size=16, block_size=block, group=group)
            assert torch.equal(i, ref_i), (k, block)
            assert torch.equal(d, ref_d), (k, block)
            assert d.dtype == i.dtype == torch.int64


def test_ties_go_to_the_smaller_index_exactly():
    # every record at the same distance from the query: the k nearest are records 0 … k − 1, in order
    R = torch.tensor([[0, 2], [2, 0], [1, 1], [2, 0], [0, 2]] * 40, dtype=torch.uint8)
    Q = torch.tensor([[0, 0]], dtype=torch.uint8)
    for path in kb.PATHS:
        d, i = kb.kneighbors(R, Q, 7, path=path, block_size=64, group=8)
        assert i.tolist() == [[2, 7, 12, 17, 22, 27, 32]] and d.tolist() == [[2] * 7]
        d, i = kb.kneighbors(R[[0, 1, 3, 4] * 50], Q, 5, path=path, block_size=64, group=8)
        assert i.tolist() == [[0, 1, 2, 3, 4]] and d.tolist() == [[4] * 5]


def test_a_tie_at_the_group_boundary_is_searched_in_full():
    """Two groups share the k-th largest group maximum: the pre-filter may keep the wrong one, so the row is
    searched in full — the answer is the brute force's."""
    k, group, B = 2, 4, 32  # 8 groups: group c holds records c, c + 8, c + 16, c + 24
    G = torch.zeros(2, B, dtype=torch.int32)
    G[:, 3] = 10  # group 3's maximum: the nearest record
    G[0, 5 + 24], G[0, 6] = 7, 7  # groups 5 and 6 tie for the k-th maximum: record 6 (group 6) is nearer …
    G[1, 5], G[1, 6 + 24] = 7, 7  # … and here record 5 (group 5): whichever group topk keeps, one row needs all
    base = torch.arange(B, dtype=torch.int64)  # b = 0 for all: key = index − G · 2^shift
    best = kb._block_best(G, base, k, group, shift=6).sort(dim=1).values
    assert (best & 63).tolist() == [[3, 6], [3, 5]]


def test_the_fold_is_exact_for_a_wide_spread_of_norms():
    """Records from all-zero to all-255 and mid-grey: norms spread over the whole range, many fold columns."""
    g = torch.Generator().manual_seed(7)
    R = torch.randint(0, 256, (500, 784), generator=g, dtype=torch.uint8)
    R[0], R[1], R[2] = 0, 255, 128
    R[3:100] = torch.randint(100, 156, (97, 784), generator=g, dtype=torch.uint8)
    Q = torch.cat(
        [
            torch.randint(0, 256, (20, 784), generator=g, dtype=torch.uint8),
            torch.tensor([0, 255, 128], dtype=torch.uint8).repeat_interleave(784).view(3, 784),
        ]
    )
    index = kb.prepare(R)
    assert index.fold_columns > 100
    ref = kb.brute_force(R, Q, 5)
    for path in kb.PATHS:
        assert all(torch.equal(a, b) for a, b in zip(kb.kneighbors(index, Q, 5, path=path, block_size=128), ref))


def test_float_path_equals_int_mm_path():
    g = torch.Generator().manual_seed(3)
    R, Q = _bytes((1500, 200), 5, g), _bytes((300, 200), 5, g)
    index = kb.prepare(R)
    a = kb.kneighbors(index, Q, 4, path="int_mm", chunk_size=128, block_size=512)
    b = kb.kneighbors(index, Q, 4, path="float", chunk_size=100, block_size=256)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_one_record_one_pixel_and_identical_records():
    one = torch.tensor([[7]], dtype=torch.uint8)
    for path in kb.PATHS:
        assert [
            t.tolist() for t in kb.kneighbors(one, torch.tensor([[3], [250]], dtype=torch.uint8), 1, path=path)
        ] == [[[16], [243**2]], [[0], [0]]]
        same = torch.full((10, 4), 200, dtype=torch.uint8)  # no pixel varies: every distance ties
        d, i = kb.kneighbors(same, torch.zeros(2, 4, dtype=torch.uint8), 3, path=path)
        assert i.tolist() == [[0, 1, 2]] * 2 and d.tolist() == [[4 * 200**2] * 3] * 2


def test_records_take_a_byte_per_pixel():
    """The fold lives in the columns of pixels constant over the records (MNIST's blank border) when there are
    enough of them: the records are n × p bytes; otherwise a few columns are appended."""
    R = torch.zeros(1000, 784, dtype=torch.uint8)
    R[:, :700] = torch.randint(0, 256, (1000, 700), dtype=torch.uint8)
    index = kb.prepare(R)
    assert index.data.dtype == torch.int8 and index.data.shape == (1000, 784)
    assert index.nbytes() < 1000 * 784 + 1000 * 8 + 784 * 8 * 3
    full = kb.prepare(torch.randint(0, 256, (1000, 100), dtype=torch.uint8))  # no constant pixel
    assert full.data.shape == (1000, 100 + full.fold_columns)


@pytest.mark.parametrize(
    "bad,exc,pattern",
    [
        (lambda: kb.kneighbors(torch.zeros(5, 3), torch.zeros(2, 3, dtype=torch.uint8), 1), TypeError, "bytes"),
        (
            lambda: kb.kneighbors(torch.zeros(5, 3, dtype=torch.uint8), torch.zeros(2, 4, dtype=torch.uint8), 1),
            ValueError,
            "3 pixels",
        ),
        (
            lambda: kb.kneighbors(torch.zeros(5, 3, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.uint8), 6),
            ValueError,
            "larger than",
        ),
        (
            lambda: kb.kneighbors(torch.zeros(5, 3, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.uint8), 0),
            ValueError,
            "positive",
        ),
        (lambda: kb.prepare(torch.zeros(0, 3, dtype=torch.uint8)), ValueError, "no records"),
        (
            lambda: kb.kneighbors(
                torch.zeros(5, 3, dtype=torch.uint8), torch.zeros(2, 3, dtype=torch.uint8), 1, path="gpu"
            ),
            ValueError,
            "path",
        ),
    ],
)
def test_bad_input(bad, exc, pattern):
    with pytest.raises(exc, match=pattern):
        bad()


def test_path_info_names_the_path_and_the_flags(monkeypatch):
    info = kb.path_info()
    assert info["path"] in kb.PATHS and info["why"] and isinstance(info["cpu_flags"], dict)
    kb._decide.cache_clear()
    monkeypatch.setenv("NNREF_KNN_PATH", "float")
    try:
        assert kb.select_path() == "float" and kb.path_info()["why"] == "NNREF_KNN_PATH"
    finally:
        kb._decide.cache_clear()


def test_without_int_mm_the_float_path_runs(monkeypatch):
    kb._decide.cache_clear()
    monkeypatch.delenv("NNREF_KNN_PATH", raising=False)
    monkeypatch.delattr(torch, "_int_mm")
    try:
        assert kb.select_path() == "float"
        R = torch.randint(0, 256, (50, 9), dtype=torch.uint8)
        assert torch.equal(kb.kneighbors(R, R[:5], 1)[1].flatten(), torch.arange(5))
    finally:
        kb._decide.cache_clear()


@pytest.mark.mnist
def test_bytes_equal_scikit_learn_brute_force_on_real_mnist(real_mnist):
    import sklearn.neighbors as sk

    from nnref.data import load_mnist, normalize

    train_images, train_labels = load_mnist(real_mnist, train=True, download=False)
    test_images, _ = load_mnist(real_mnist, train=False, download=False)
    R, Q = train_images[:20000].reshape(-1, 784), test_images[:500].reshape(-1, 784)
    y = train_labels[:20000]
    ref = sk.KNeighborsClassifier(3, algorithm="brute").fit(normalize(R).double().numpy(), y.numpy())
    ref_idx = torch.from_numpy(ref.kneighbors(normalize(Q).double().numpy(), return_distance=False))
    index = kb.prepare(R)
    for path in kb.PATHS:
        d, i = kb.kneighbors(index, Q, 3, path=path)
        assert torch.equal(i, ref_idx), path
        assert torch.equal(d, (Q[:, None].long() - R[i].long()).square().sum(-1))  # the exact integer distances
        votes = torch.from_numpy(ref.predict(normalize(Q).double().numpy()))
        assert torch.equal(vote(y[i], 10), votes)


@pytest.mark.parametrize("path", kb.PATHS)
def test_threads_split_the_queries_and_change_nothing(path, monkeypatch):
    monkeypatch.setattr(kb, "_MIN_ROWS", 8)  # threads for a small test
    g = torch.Generator().manual_seed(11)
    R, Q = _bytes((700, 30), 4, g), _bytes((101, 30), 4, g)
    ref = kb.brute_force(R, Q, 5)
    before = torch.get_num_threads()
    for threads in (1, 2, 3):
        d, i = kb.kneighbors(R, Q, 5, path=path, threads=threads, chunk_size=16, block_size=128, group=8)
        assert torch.equal(i, ref[1]) and torch.equal(d, ref[0]), threads
        assert torch.get_num_threads() == before  # restored


def test_an_error_in_a_thread_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(kb, "_MIN_ROWS", 8)

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(kb, "_search", fail)
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        kb.kneighbors(torch.zeros(50, 3, dtype=torch.uint8), torch.zeros(40, 3, dtype=torch.uint8), 1, threads=2)
    assert torch.get_num_threads() == before


def test_float64_where_float32_fails_its_check(monkeypatch):
    kb._decide.cache_clear()
    real = kb._self_check
    monkeypatch.setattr(
        kb,
        "_self_check",
        lambda path, device, dtype=torch.float32: (
            False if path == "float" and dtype == torch.float32 else real(path, device, dtype)
        ),
    )
    try:
        assert kb.path_info()["float_dtype"] == "float64"
        g = torch.Generator().manual_seed(5)
        R, Q = _bytes((400, 50), 3, g), _bytes((30, 50), 3, g)
        ref = kb.brute_force(R, Q, 4)
        assert all(torch.equal(a, b) for a, b in zip(kb.kneighbors(R, Q, 4, path="float"), ref))
    finally:
        kb._decide.cache_clear()
