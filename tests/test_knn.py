"""nnref.knn: the classifier against scikit-learn, the vote, the merge of sharded candidates, choosing k."""

from __future__ import annotations

import math

import pytest
import torch
from bad_inputs import KNN_CASES

from nnref.knn import KNNClassifier, choose_k, merge_neighbours, vote, vote_shares
from nnref.run.knn import chosen_k


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_knn_agrees_with_scikit_learn_brute(metric, k):
    import sklearn.neighbors as sk

    g = torch.Generator().manual_seed(k)
    X, y = torch.randn(300, 12, generator=g), torch.randint(0, 4, (300,), generator=g)
    Q = torch.randn(150, 12, generator=g)
    ours = KNNClassifier(k, metric, chunk_size=32).fit(X, y).predict(Q)
    ref = sk.KNeighborsClassifier(k, algorithm="brute", metric=metric).fit(X.numpy(), y.numpy()).predict(Q.numpy())
    assert ours.tolist() == ref.tolist()


def test_knn_neighbours_are_the_true_nearest():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(200, 5, generator=g), torch.randint(0, 3, (200,), generator=g)
    Q = torch.randn(20, 5, generator=g)
    d, idx = KNNClassifier(5, chunk_size=7).fit(X, y).kneighbors(Q)
    ref = torch.cdist(Q.double(), X.double()) ** 2
    exp_d, exp_idx = ref.topk(5, largest=False)
    assert idx.tolist() == exp_idx.tolist()
    torch.testing.assert_close(d, exp_d)


def test_knn_tie_rules_are_deterministic():
    # two records at exactly the same distance: the earlier record wins the neighbour slot
    X = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 5.0]])
    y = torch.tensor([2, 1, 0])
    knn = KNNClassifier(1).fit(X, y)
    assert knn.kneighbors(torch.zeros(1, 2))[1].tolist() == [[0]]
    # a 1-1 vote between classes 2 and 1: the smaller label wins (scikit-learn's rule)
    assert KNNClassifier(2).fit(X, y).predict(torch.zeros(1, 2)).tolist() == [1]
    torch.testing.assert_close(
        KNNClassifier(2).fit(X, y).predict_proba(torch.zeros(1, 2)), torch.tensor([[0.0, 0.5, 0.5]])
    )


def test_knn_chunking_does_not_change_predictions():
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(500, 8, generator=g), torch.randint(0, 5, (500,), generator=g)
    Q = torch.randn(97, 8, generator=g)
    a = KNNClassifier(3, chunk_size=1).fit(X, y).predict(Q)
    b = KNNClassifier(3, chunk_size=10_000).fit(X, y).predict(Q)
    assert torch.equal(a, b)
    for block in (1, 7, 64, 499, 10_000):  # the records are searched block by block: the blocks change nothing
        d, i = KNNClassifier(3, chunk_size=16, block_size=block).fit(X, y).kneighbors(Q)
        d0, i0 = KNNClassifier(3).fit(X, y).kneighbors(Q)
        assert torch.equal(i, i0) and torch.equal(d, d0), block


def test_knn_memory_is_the_training_set():
    X, y = torch.randn(100, 10), torch.randint(0, 2, (100,))
    knn = KNNClassifier(3).fit(X, y)
    assert knn.memory_bytes() >= X.numel() * 4


@pytest.mark.parametrize("call,exc,pattern", KNN_CASES)
def test_knn_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_knn_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(2)
    X, y, Q = (
        torch.randn(400, 16, generator=g),
        torch.randint(0, 4, (400,), generator=g),
        torch.randn(50, 16, generator=g),
    )
    cpu = KNNClassifier(3).fit(X, y).predict(Q)
    gpu = KNNClassifier(3).fit(X.cuda(), y.cuda()).predict(Q.cuda())
    assert torch.equal(cpu, gpu.cpu())


def test_the_vote_is_the_majority_and_a_tie_goes_to_the_smallest_label():
    labels = torch.tensor([[2, 2, 1], [3, 1, 1], [0, 4, 4], [5, 2, 9], [7, 7, 7]])
    assert vote(labels).tolist() == [2, 1, 4, 2, 7]  # [5, 2, 9]: a three-way tie, the smallest label wins
    shares = vote_shares(labels, num_classes=12)
    assert shares.shape == (5, 12) and torch.allclose(shares.sum(1), torch.ones(5))
    assert shares[0, 2] == pytest.approx(2 / 3) and shares[3, 9] == pytest.approx(1 / 3)
    assert vote(labels[:, :1]).tolist() == [2, 3, 0, 5, 7]  # the first neighbour alone: k = 1


def test_choose_k_takes_the_best_validation_accuracy_and_the_smaller_k_on_ties():
    results = {1: {"val_acc": 0.5}, 3: {"val_acc": 0.7}, 5: {"val_acc": 0.7}, 9: {"val_acc": 0.6}}
    assert choose_k(results, (1, 3, 5, 9)) == 3
    nan = {k: {"val_acc": math.nan} for k in (5, 1)}
    assert choose_k(nan, (5, 1)) == 5  # no validation set: the first k asked for
    assert chosen_k({"best_k": 9, "config": {"k": [1, 9]}}) == 9
    assert chosen_k({"config": {"k": [1, 3, 5, 9]}, "results": results}) == 3  # a checkpoint without best_k


def test_merging_two_shards_candidates_is_one_process_search():
    g = torch.Generator().manual_seed(4)
    X, y = torch.randn(300, 6, generator=g), torch.randint(0, 3, (300,), generator=g)
    X[200:230] = X[0:30]  # equal distances across the shards: the earlier record must win
    Q = torch.randn(40, 6, generator=g)
    one = KNNClassifier(5).fit(X, y).candidates(Q)
    shards = [KNNClassifier(5).fit(X[s:e], y[s:e], offset=s).candidates(Q) for s, e in ((0, 150), (150, 300))]
    both = [torch.cat([a, b], 1) for a, b in zip(*shards)]
    merged = merge_neighbours(*both, k=5)
    for a, b in zip(one, merged):
        assert torch.equal(a, b)


def test_no_neighbours_give_no_votes_not_nan():
    """An empty neighbour list (k = 0 columns): every share is 0 — not 0/0 — and without a class count there are
    no classes."""
    none = torch.zeros(3, 0, dtype=torch.long)
    assert torch.equal(vote_shares(none, 4), torch.zeros(3, 4))
    assert vote_shares(none, 0).shape == (3, 0)


def test_merge_breaks_many_distance_ties_by_training_index():
    """Hundreds of candidates at only two distances, in shuffled order (an unstable sort reorders ties among this
    many): the k kept are ordered by distance, then by training index, as one process orders them."""
    g = torch.Generator().manual_seed(0)
    m, r, k = 2, 300, 120
    dist = (torch.rand(m, r, generator=g) < 0.5).float()
    idx = torch.stack([torch.randperm(10_000, generator=g)[:r] for _ in range(m)])
    labels = idx % 10
    d, i, lab = merge_neighbours(dist, idx, labels, k)
    for row in range(m):
        expected = sorted(zip(dist[row].tolist(), idx[row].tolist()))[:k]
        assert list(zip(d[row].tolist(), i[row].tolist())) == expected
        assert torch.equal(lab[row], i[row] % 10)


# --------------------------------------------------------------------------------------------------
# Byte records: MNIST's own pixels, searched in integers (nnref.fast.knn_bytes)
# --------------------------------------------------------------------------------------------------
def _digits_as_bytes(n: int, seed: int, duplicates: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-like uint8 rows (n, 784) — a blank border, strokes, noise — and labels; the last ``duplicates`` rows
    copy the first ones (equal distances: the earlier record must win)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 4:24, 4:24] = torch.randint(0, 256, (n, 20, 20), generator=g, dtype=torch.uint8)
    images[:, 4:24, 4:24] *= torch.rand(n, 20, 20, generator=g) < 0.3  # mostly dark, as digits are
    rows = images.flatten(1)
    if duplicates:
        rows[-duplicates:] = rows[:duplicates]
    return rows, torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_byte_records_find_the_neighbours_of_their_normalised_floats(seed):
    import sklearn.neighbors as sk

    from nnref.data import normalize
    from nnref.fast import knn_bytes as knn_bytes_module

    X, y = _digits_as_bytes(900, seed, duplicates=60)
    Q = torch.cat([_digits_as_bytes(150, seed + 100)[0], X[:20]])  # and queries at distance 0 from two records
    knn_bytes = KNNClassifier(5, chunk_size=64).fit(X, y)
    knn_floats = KNNClassifier(5, chunk_size=64).fit(normalize(X), y)
    assert knn_bytes.stores_bytes and not knn_floats.stores_bytes
    d, i = knn_bytes.kneighbors(Q)
    d_f, i_f = knn_floats.kneighbors(normalize(Q))
    assert torch.equal(i, i_f) and d.dtype == torch.int64
    assert torch.equal(d, (Q[:, None].long() - X[i].long()).square().sum(-1))  # exact integers
    torch.testing.assert_close(d.double() / (255 * 0.3081) ** 2, d_f, rtol=1e-5, atol=1e-4)
    assert torch.equal(i[-20:, 0], torch.arange(20))  # the copy (index 840 + j) is as near: the earlier wins
    # scikit-learn orders equal distances as its partial sort leaves them: compared where the 5th and 6th differ
    exact, _ = knn_bytes_module.brute_force(X, Q, 6)
    clear = exact[:, 4] != exact[:, 5]
    assert clear.sum() >= 150  # (the copies make a few ties at the boundary)
    ref = sk.KNeighborsClassifier(5, algorithm="brute").fit(normalize(X).double().numpy(), y.numpy())
    expected = torch.from_numpy(ref.predict(normalize(Q[clear]).double().numpy()))
    assert torch.equal(knn_bytes.predict(Q)[clear], expected)


def test_byte_records_hold_a_byte_per_pixel_and_give_back_their_rows():
    from nnref.data import normalize

    X, y = _digits_as_bytes(2000, 3)
    knn = KNNClassifier(3).fit(X, y)
    floats = KNNClassifier(3).fit(normalize(X), y)
    assert knn.X is None and knn.shape == (2000, 784)
    assert X.numel() <= knn.memory_bytes() <= X.numel() + 20 * 2000  # the pixels, the keys and labels (int64 each)
    assert floats.memory_bytes() >= 4 * X.numel()
    idx = torch.tensor([0, 1999, 7, 7])
    assert torch.equal(knn.records(idx), X[idx])  # the shift, the zeroed border and the fold all undone
    shard = KNNClassifier(3).fit(X[1000:], y[1000:], offset=1000)
    assert torch.equal(shard.records(idx), torch.where((idx >= 1000)[:, None], X[idx], 0))


def test_byte_records_are_queried_with_bytes_and_other_metrics_keep_floats():
    X, y = _digits_as_bytes(100, 4)
    with pytest.raises(TypeError, match=r"keeps its records as bytes \(uint8\): query it with uint8 rows"):
        KNNClassifier(3).fit(X, y).predict(X.float())
    for metric in ("manhattan", "cosine"):
        knn = KNNClassifier(3, metric).fit(X, y)
        assert not knn.stores_bytes and knn.X.dtype == torch.float32
        assert torch.equal(knn.predict(X[:10]), knn.predict(X[:10].float()))


def test_byte_shards_merge_into_the_one_process_search():
    X, y = _digits_as_bytes(600, 5, duplicates=200)  # copies across the shard boundary
    Q = torch.cat([_digits_as_bytes(50, 6)[0], X[:30]])
    one = KNNClassifier(4).fit(X, y).candidates(Q)
    shards = [KNNClassifier(4).fit(X[s:e], y[s:e], offset=s).candidates(Q) for s, e in ((0, 300), (300, 600))]
    merged = merge_neighbours(*(torch.cat([a, b], 1) for a, b in zip(*shards)), k=4)
    for a, b in zip(one, merged):
        assert torch.equal(a, b)


def test_the_float_product_fallback_finds_the_same_neighbours(monkeypatch):
    from nnref.fast import knn_bytes

    X, y = _digits_as_bytes(700, 7, duplicates=50)
    Q = _digits_as_bytes(120, 8)[0]
    found = {}
    for path in knn_bytes.PATHS:
        knn_bytes._decide.cache_clear()
        monkeypatch.setenv("NNREF_KNN_PATH", path)
        try:
            assert knn_bytes.select_path() == path
            found[path] = KNNClassifier(3).fit(X, y).kneighbors(Q)
        finally:
            knn_bytes._decide.cache_clear()
    (d0, i0), (d1, i1) = found.values()
    assert torch.equal(i0, i1) and torch.equal(d0, d1)


@pytest.mark.mnist
def test_bytes_floats_and_scikit_learn_agree_on_mnist(real_mnist):
    """Every test image against all 60,000 training images: the byte search and the float search find the same
    neighbours (k = 3), and the predictions equal scikit-learn's brute force in float64 (on 1,000 of them)."""
    import sklearn.neighbors as sk

    from nnref.data import load_splits

    bytes_, floats = (load_splits(real_mnist, download=False, val_size=0, pixels=p) for p in ("bytes", "normalized"))
    knn = KNNClassifier(3).fit(bytes_.train_x, bytes_.train_y)
    _, i = knn.kneighbors(bytes_.test_x)
    _, i_f = KNNClassifier(3).fit(floats.train_x, floats.train_y).kneighbors(floats.test_x)
    assert i.shape == (10_000, 3) and torch.equal(i, i_f)
    ref = sk.KNeighborsClassifier(3, algorithm="brute").fit(floats.train_x.double().numpy(), floats.train_y.numpy())
    expected = ref.predict(floats.test_x[:1000].double().numpy())
    assert vote(bytes_.train_y[i[:1000]], 10).tolist() == expected.tolist()
    assert knn.memory_bytes() < 60_000 * 784 * 1.03  # the records in bytes: 47 MB, not float32's 188 MB


def test_fitting_bytes_chooses_the_product_so_the_first_query_does_not_wait(monkeypatch):
    """The digit page fits KNN when the server starts: a student's first stroke must not pay for the timing."""
    from nnref.fast import knn_bytes

    X, y = _digits_as_bytes(200, 3)
    timings, time_products = [], knn_bytes._time_products

    def counted(*args, **kwargs):
        timings.append(args)
        return time_products(*args, **kwargs)

    monkeypatch.delenv("NNREF_KNN_PATH", raising=False)
    monkeypatch.setattr(knn_bytes, "_time_products", counted)
    knn_bytes._decide.cache_clear()
    try:
        knn = KNNClassifier(3).fit(X, y)
        chosen, timed = knn_bytes._decide.cache_info().currsize, len(timings)
        assert knn.predict(X[:5]).shape == (5,)
    finally:
        knn_bytes._decide.cache_clear()
    assert chosen == 1 and timed == len(timings)  # chosen at fit, and not timed again by the query
