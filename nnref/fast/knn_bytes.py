"""Exact k-nearest neighbours in bytes: MNIST's own pixels, integer distances, no rounding anywhere.

The Euclidean distance between two byte images is an integer.  This module finds the k nearest records of
each query with integer matrix products and returns those integers — no float re-rank, no float ties: equal
distances are ordered by record index, exactly.

The arithmetic (all of it exact):

* Bytes shifted by 128 into int8 (``x ^ 0x80`` read as int8 is ``x − 128``); a shift changes no distance.
* A pixel that has one value v in every record adds (q − v)² to the query's distance to *every* record: it cannot
  change a ranking, so its column is zeroed in the products and (q − v)² added back per query (MNIST's
  training set has 67 such pixels, its blank border).
* ‖q − r‖² = ‖q‖² + ‖r‖² − 2 q·r.  Write ‖r‖² = 2h + b (b ∈ {0, 1}).  The record's −h (less a centre c) is
  folded into the product itself: a few int8 columns of each record (zeroed constant pixels — 31 of MNIST's
  67 — or new columns where there are too few) hold numbers whose sum, times the query's 127 in those columns
  (1 in the last), is c − h.  So one product gives G = q·r − h + c, an int32, and
  ``D = (‖q‖² + 2c) + (b − 2G)``.  Since b is 0 or 1, a larger G is always a smaller distance (a step of
  one in G is two in D); among equal G the smaller b, then the smaller index, is nearer.  No pass over the
  tile adds the norms: the product's output is already the score.
* Order key: ``(b − 2G) · 2^bits + index`` in int64 — one integer that sorts by (distance, index).
* Per tile of queries × records only the k best matter.  The tile's records are cut into groups; each
  group's largest G (one vectorised max) says which k groups hold the k largest G; among their members the k
  largest G are the k nearest.  A row where the k-th and (k + 1)-th group maxima, or the k-th and (k + 1)-th
  G among the members, are equal (a tie at a boundary) is searched in full with the keys instead, so the
  shortcut never changes an answer.  Each tile's k keys are kept; one top-k over them ends a chunk.
* On the CPU the queries are split into one slice per thread, each searched with one intra-op thread: a tile
  is a dozen small operations, and threads that never wait for each other at their ends keep their speed on
  a machine others share (2–10× less slowdown under load than torch's own two threads, measured).

Two ways to compute the products, with identical results:

* ``"int_mm"``: ``torch._int_mm`` (int8 × int8 → int32; oneDNN's VNNI/AMX kernels on x86).
* ``"float"``: the same int8 values as float32 (float64 where the sums could pass 2²⁴) through an ordinary
  matrix product.  Every partial sum is an integer of magnitude below Σ|terms| < 2²⁴, so float32 (and TF32,
  and bf16 inputs: every value is at most 128 in magnitude) computes it exactly.  Used where ``_int_mm`` is
  missing, fails its self-check, or is not faster (a CPU without VNNI, a GPU).

:func:`select_path` says which runs (override: ``NNREF_KNN_PATH=int_mm|float``).
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from dataclasses import dataclass

import torch

__all__ = [
    "BLOCK",
    "BLOCK_FLOAT",
    "CHUNK",
    "GROUP",
    "PATHS",
    "ByteRecords",
    "brute_force",
    "cpu_flags",
    "kneighbors",
    "path_info",
    "prepare",
    "select_path",
]

PATHS = ("int_mm", "float")
#: Queries per tile, records per tile, records per group of the group-maximum pre-filter (measured on 2 cores).
CHUNK, BLOCK, GROUP = 512, 4096, 32
BLOCK_FLOAT = 2048  # the float path also holds each block of records as floats: smaller blocks

_ROWS = 4096  # records converted at once in prepare()
_MIN_ROWS = 256  # queries per thread, at least
_QCONST = 127  # the query's value in the fold columns (the last fold column: 1)
_F32_EXACT = 2**24  # float32 holds every integer up to this magnitude


@dataclass
class ByteRecords:
    """Records prepared for the byte search.

    ``data`` (n, K) int8: the pixels − 128, with the columns of the pixels equal in every record
    (``constant``, their byte values ``constant_values``) zeroed or reused as the fold's columns (``slots``:
    query value 127 each, the last 1), and new columns appended only where there are too few of them.
    ``key_base`` (n,) int64: (b << bits) + index, b the parity of ‖r‖².  ``centre``: c.
    ``bound``: Σ|terms| of one product, the largest magnitude any of its partial sums can reach.
    """

    data: torch.Tensor
    constant: torch.Tensor
    constant_values: torch.Tensor
    slots: torch.Tensor
    key_base: torch.Tensor
    centre: int
    bits: int
    p: int
    bound: int

    @property
    def n(self) -> int:
        return self.data.shape[0]

    @property
    def fold_columns(self) -> int:
        return self.slots.numel()

    def nbytes(self) -> int:
        """What the search holds: the int8 matrix, the per-record int64 keys, the column lists."""
        return sum(
            t.numel() * t.element_size()
            for t in (self.data, self.key_base, self.constant, self.constant_values, self.slots)
        )

    def records(self, idx: torch.Tensor) -> torch.Tensor:
        """The original uint8 rows (len(idx), p) of the records ``idx``: the shift undone, the constant pixels
        (zeroed, or holding the fold) given back their value — nothing else is kept of the records."""
        shifted = self.data.index_select(0, idx.to(self.data.device))[:, : self.p]
        rows = torch.bitwise_xor(shifted.view(torch.uint8), 0x80)
        if self.constant.numel():
            rows[:, self.constant] = self.constant_values.to(torch.uint8)
        return rows


def _shift(x: torch.Tensor) -> torch.Tensor:
    """uint8 → int8 minus 128, exactly (the top bit flipped, the bytes reinterpreted)."""
    return torch.bitwise_xor(x, 0x80).view(torch.int8)


def _check_bytes(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise TypeError(f"{name} must hold bytes (torch.uint8), got {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (rows, pixels), got shape {tuple(x.shape)}")
    return x.contiguous()


def _square_norms(x: torch.Tensor) -> torch.Tensor:
    """Σ x² per row of int8 x, int64 — through float32, exact (every partial sum < 2^24 when a row has under
    1024 columns; wider rows in float64), a few thousand rows at a time."""
    dtype = torch.float32 if x.shape[1] <= 1024 else torch.float64
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for i in range(0, x.shape[0], _ROWS):
        out[i : i + _ROWS] = x[i : i + _ROWS].to(dtype).square_().sum(1).to(torch.int64)
    return out


def prepare(records: torch.Tensor) -> ByteRecords:
    """The search's form of uint8 records (n, p): int8 (− 128), constant pixels zeroed, −h + c folded in."""
    records = _check_bytes(records, "records")
    n, p = records.shape
    if n == 0:
        raise ValueError("there are no records: KNN needs at least one")
    if p == 0 or p > 40_000:  # keeps |G| and the int64 keys far from overflow (int32: 3 p 2^14 < 2^31)
        raise ValueError(f"records must have 1 to 40,000 pixels, got {p}")
    lo, hi = records.amin(0), records.amax(0)
    same = lo == hi
    constant = same.nonzero().flatten()
    data = _shift(records)
    if constant.numel():
        data.index_fill_(1, constant, 0)  # these pixels add the same (q − v)² to every distance: per query
    norms = _square_norms(data)  # ‖r‖² over the varying pixels
    h, b = norms >> 1, norms & 1
    centre = int((int(h.max()) + int(h.min())) // 2)
    t = centre - h  # folded into the product: |t| ≤ half the spread of h, plus one
    e2 = torch.remainder(t, _QCONST)  # 0 … 126, the last column (query value 1)
    e1 = torch.div(t - e2, _QCONST, rounding_mode="floor")  # spread over J columns (query value 127)
    j = max(1, -(-int(e1.abs().max()) // 127))
    extra = max(0, j + 1 - constant.numel())
    if extra:  # too few constant pixels to hold the fold: new columns
        data = torch.cat([data, torch.zeros(n, extra, dtype=torch.int8, device=data.device)], 1)
    slots = torch.cat([constant, torch.arange(p, p + extra, device=data.device)])[: j + 1]
    base = torch.div(e1, j, rounding_mode="floor")  # −127 … 127
    rem = e1 - base * j  # the first rem columns get base + 1
    fold = base.to(torch.int8).unsqueeze(1).repeat(1, j + 1)
    fold[:, :j] += torch.arange(j, device=records.device).unsqueeze(0) < rem.unsqueeze(1)
    fold[:, j] = e2
    data[:, slots] = fold
    bits = max(1, (n - 1).bit_length())
    key_base = (b << bits) + torch.arange(n, device=records.device)
    bound = (p - constant.numel()) * 128 * 128 + j * 127 * 128 + 126
    return ByteRecords(
        data, constant, lo.index_select(0, constant).to(torch.int64), slots, key_base, centre, bits, p, bound
    )


def _queries(index: ByteRecords, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The queries' int8 rows (m, K) (pixels − 128, constant pixels 0, the fold's columns 127 … 127, 1) and
    each query's constant: ‖q‖² (varying pixels) + Σ over the constant pixels (q − v)² + 2c, int64 (m,)."""
    q = _shift(queries)
    m, extra = q.shape[0], index.data.shape[1] - index.p
    qc = torch.full((m,), 2 * index.centre, dtype=torch.int64, device=q.device)
    if index.constant.numel():
        qc += (queries.index_select(1, index.constant).to(torch.int64) - index.constant_values).square().sum(1)
        q.index_fill_(1, index.constant, 0)
    qc += _square_norms(q)
    if extra:
        q = torch.cat([q, torch.zeros(m, extra, dtype=torch.int8, device=q.device)], 1)
    q[:, index.slots] = _QCONST
    q[:, index.slots[-1]] = 1
    return q, qc


# --------------------------------------------------------------------------------------------------
# Which product: _int_mm or float, and why
# --------------------------------------------------------------------------------------------------
def cpu_flags() -> dict:
    """The x86 flags that decide how fast int8 products can be (Linux's /proc/cpuinfo; {} elsewhere)."""
    wanted = (
        "avx2",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
        "avx_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    )
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return {}
    return {name: name in flags for name in wanted}


def _product(
    path: str, q: torch.Tensor, r: torch.Tensor, out: torch.Tensor | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """G = q · rᵀ for int8 q (m, K), r (B, K): int32 through _int_mm, or ``dtype`` floats."""
    if path == "int_mm":
        return torch._int_mm(q, r.t(), out=out) if out is not None else torch._int_mm(q, r.t())
    if out is not None:
        return torch.mm(q.to(dtype), r.to(dtype).t(), out=out)
    return torch.mm(q.to(dtype), r.to(dtype).t())


def _self_check(path: str, device: torch.device, dtype: torch.dtype = torch.float32) -> bool:
    """The product equal to an exact reference on random and extreme int8 values (−128 · −128 everywhere:
    the largest sums; a kernel that saturates 16-bit pairs, as int8 code without VNNI can, fails), in small
    odd shapes and in a tile large enough for blocked kernels."""
    g = torch.Generator().manual_seed(0)

    def mixed(rows):
        x = torch.randint(-128, 128, (rows, 800), generator=g, dtype=torch.int8)
        x[:, ::3] = -128
        x[:, 1::7] = 127
        return x

    shapes = [
        (mixed(37), mixed(45)),
        (torch.full((17, 800), -128, dtype=torch.int8), mixed(40)),
        (torch.full((300, 800), -128, dtype=torch.int8), torch.full((260, 800), -128, dtype=torch.int8)),
        (mixed(300), mixed(260)),
    ]
    try:
        for q, r in shapes:
            got = _product(path, q.to(device), r.to(device), dtype=dtype).cpu().to(torch.float64)
            if not torch.equal(got, q.to(torch.float64) @ r.to(torch.float64).t()):  # exact: sums < 2^53
                return False
        return True
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def _time_products(
    device: torch.device, m: int = 512, b: int = 1024, p: int = 784, rounds: int = 4
) -> tuple[float, float]:
    """The best of a few alternating timings of a 512 × 1024 tile, int_mm and float32, one thread."""
    q = torch.randint(-128, 128, (m, p), dtype=torch.int8, device=device)
    r = torch.randint(-128, 128, (b, p), dtype=torch.int8, device=device)
    outs = {
        "int_mm": torch.empty(m, b, dtype=torch.int32, device=device),
        "float": torch.empty(m, b, dtype=torch.float32, device=device),
    }
    best = {path: float("inf") for path in outs}
    for _ in range(rounds + 1):
        for path, out in outs.items():
            t = time.perf_counter()
            _product(path, q, r, out)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best[path] = min(best[path], time.perf_counter() - t)
    return best["int_mm"], best["float"]


@functools.cache
def _decide(device_type: str) -> tuple[str, str, torch.dtype]:
    """(path, why, the float path's dtype) for a device type, once."""
    device = torch.device(device_type)
    float_dtype = torch.float32 if _self_check("float", device) else torch.float64
    forced = os.environ.get("NNREF_KNN_PATH")
    if forced:
        if forced not in PATHS:
            raise ValueError(f"NNREF_KNN_PATH must be one of {PATHS}, got {forced!r}")
        return forced, "NNREF_KNN_PATH", float_dtype
    if not hasattr(torch, "_int_mm"):
        return "float", "torch has no _int_mm", float_dtype
    if device.type != "cpu":
        return "float", f"on {device.type} the float product (exact for these values) is used", float_dtype
    if not _self_check("int_mm", device):
        return "float", "torch._int_mm failed its exactness check", float_dtype
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the search runs it: one intra-op thread per slice of the queries
    try:
        t_int, t_float = _time_products(device)
    finally:
        torch.set_num_threads(before)
    if t_int < 0.8 * t_float:
        return "int_mm", f"_int_mm {t_float / t_int:.1f}x as fast as the float product", float_dtype
    return "float", f"_int_mm only {t_float / t_int:.2f}x as fast as the float product", float_dtype


def select_path(device: torch.device | str = "cpu") -> str:
    """``"int_mm"`` or ``"float"``: the product this device's search uses (decided once per device type: a
    self-check on extreme values, then the two products of a 512 × 1024 tile timed, one thread)."""
    return _decide(torch.device(device).type)[0]


def path_info(device: torch.device | str = "cpu") -> dict:
    """Which product runs, why, the float path's dtype, and the CPU flags beside them (for the bench)."""
    device = torch.device(device)
    path, why, float_dtype = _decide(device.type)
    return {
        "path": path,
        "why": why,
        "float_dtype": str(float_dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "device": device.type,
        "cpu_flags": cpu_flags(),
    }


# --------------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------------
def _full_keys(G: torch.Tensor, base: torch.Tensor, shift: int) -> torch.Tensor:
    """Exact order keys (rows, B) int64 of a tile of products G: base − G · 2^shift."""
    return torch.add(base, G.to(torch.int64), alpha=-(1 << shift))


def _block_best(G: torch.Tensor, base: torch.Tensor, k: int, group: int, shift: int) -> torch.Tensor:
    """The k smallest keys (m, k) (unsorted) of a tile: G (m, B), records' key bases (B,).

    Group c holds records c, c + w, c + 2w, … (w = B / group): the groups' maxima are one vectorised max over
    the rows of a (group, w) view.  The k groups with the largest maxima hold the k largest G, unless the k-th
    and (k + 1)-th maxima are equal; among their members the k largest G are the k nearest, unless the k-th
    and (k + 1)-th are equal (then b and the index decide).  Rows with either tie are searched in full."""
    m, B = G.shape
    width = B // group if group >= 2 and B % group == 0 else 0
    if width < k + 1 or k * group * 2 > B:  # too few groups for the pre-filter to save anything
        return _full_keys(G, base, shift).topk(k, dim=1, largest=False, sorted=False).values
    top = G.view(m, group, width).amax(dim=1).topk(k + 1, dim=1, sorted=True)
    cand = (top.indices[:, :k].unsqueeze(2) + torch.arange(0, B, width, device=G.device)).view(m, k * group)
    sel = G.gather(1, cand).topk(k + 1, dim=1, sorted=True)
    nearest = cand.gather(1, sel.indices[:, :k])
    best = base[nearest] - (sel.values[:, :k].to(torch.int64) << shift)
    dirty = ((top.values[:, k - 1] == top.values[:, k]) | (sel.values[:, k - 1] == sel.values[:, k])).nonzero()
    if dirty.numel():  # a tie at a boundary: these rows, every record of the tile
        rows = dirty.flatten()
        best[rows] = _full_keys(G[rows], base, shift).topk(k, dim=1, largest=False, sorted=False).values
    return best


def kneighbors(
    records: torch.Tensor | ByteRecords,
    queries: torch.Tensor,
    k: int,
    path: str | None = None,
    chunk_size: int = CHUNK,
    block_size: int | None = None,
    group: int = GROUP,
    threads: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest records of each query, exactly: (squared distances (m, k) int64, indices (m, k) int64),
    nearest first, equal distances by index.  ``records``: uint8 (n, p) or :func:`prepare`'s result;
    ``queries``: uint8 (m, p).

    Tiles of ``chunk_size`` queries × ``block_size`` records (default :data:`BLOCK`, :data:`BLOCK_FLOAT` on
    the float path): the extra memory is about chunk · block · 4 bytes per thread (plus block · K · 4 on the
    float path) and the output, however large n and m.  On the CPU, ``threads`` (default: torch's
    intra-op thread count) searches run side by side on slices of the queries, each with one intra-op thread
    (torch's count is set to 1 for the call and restored after): a tile is a dozen small operations, and one
    thread per slice never waits for another at their ends — which matters on a machine others share."""
    index = records if isinstance(records, ByteRecords) else prepare(records)
    queries = _check_bytes(queries, "queries")
    if queries.shape[1] != index.p:
        raise ValueError(f"queries must have {index.p} pixels like the records, got shape {tuple(queries.shape)}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > index.n:
        raise ValueError(f"k = {k} is larger than the number of records ({index.n})")
    device = index.data.device
    queries = queries.to(device)
    path = path or select_path(device)
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    block_size = block_size or (BLOCK if path == "int_mm" else BLOCK_FLOAT)
    m = queries.shape[0]
    out_d = torch.empty(m, k, dtype=torch.int64, device=device)
    out_i = torch.empty(m, k, dtype=torch.int64, device=device)
    search = functools.partial(
        _search, index, k=k, path=path, chunk_size=chunk_size, block_size=block_size, group=group
    )
    workers = min(threads or torch.get_num_threads(), -(-m // _MIN_ROWS)) if device.type == "cpu" else 1
    _in_slices(search, queries, out_d, out_i, workers)
    return out_d, out_i


def _in_slices(search, queries: torch.Tensor, out_d: torch.Tensor, out_i: torch.Tensor, workers: int) -> None:
    """``search(queries, out_d, out_i)`` over ``workers`` slices of the queries side by side, one thread each and
    torch's intra-op thread count 1 meanwhile (restored after); an error in any thread is raised here."""
    if workers <= 1:
        search(queries, out_d, out_i)
        return
    m = queries.shape[0]
    bounds = [m * w // workers for w in range(workers + 1)]
    parts = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    errors: list[BaseException] = []

    def work(part: slice) -> None:
        try:
            search(queries[part], out_d[part], out_i[part])
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread)
            errors.append(exc)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pool = [threading.Thread(target=work, args=(part,), daemon=True) for part in parts[1:]]
        for t in pool:
            t.start()
        work(parts[0])  # this thread takes the first slice
        for t in pool:
            t.join()
    finally:
        torch.set_num_threads(before)
    if errors:
        raise errors[0]


def _search(
    index: ByteRecords,
    queries: torch.Tensor,
    out_d: torch.Tensor,
    out_i: torch.Tensor,
    *,
    k: int,
    path: str,
    chunk_size: int,
    block_size: int,
    group: int,
) -> None:
    """:func:`kneighbors` of some queries, in one thread: fills out_d, out_i (m, k)."""
    device = index.data.device
    dtype = _decide(device.type)[2] if index.bound < _F32_EXACT else torch.float64
    shift = index.bits + 1  # key = (b − 2G) << bits | index = base − G << (bits + 1)
    n, mask = index.n, (1 << index.bits) - 1
    buf = torch.empty(
        min(chunk_size, queries.shape[0]) * min(block_size, n),
        device=device,
        dtype=torch.int32 if path == "int_mm" else dtype,
    )  # every tile's products, in turn
    for start in range(0, queries.shape[0], chunk_size):
        q, qc = _queries(index, queries[start : start + chunk_size])
        if path == "float":
            q = q.to(dtype)
        found = []
        for lo in range(0, n, block_size):
            r = index.data[lo : lo + block_size]
            G = buf[: q.shape[0] * r.shape[0]].view(q.shape[0], r.shape[0])  # contiguous, reused
            if path == "int_mm":
                torch._int_mm(q, r.t(), out=G)
            else:
                torch.mm(q, r.to(dtype).t(), out=G)
            found.append(_block_best(G, index.key_base[lo : lo + r.shape[0]], min(k, r.shape[0]), group, shift))
            if len(found) == 64:  # a bounded list, however many records
                found = [torch.cat(found, 1).topk(k, dim=1, largest=False, sorted=False).values]
        best = torch.cat(found, 1).topk(k, dim=1, largest=False, sorted=True).values  # every block's best k
        out_i[start : start + q.shape[0]] = best & mask
        out_d[start : start + q.shape[0]] = qc.unsqueeze(1) + (best >> index.bits)


def brute_force(records: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: every squared distance in int64, ordered by (distance, index) with a stable sort."""
    d = (queries.to(torch.int64).unsqueeze(1) - records.to(torch.int64).unsqueeze(0)).square().sum(-1)
    order = d.argsort(dim=1, stable=True)[:, :k]
    return d.gather(1, order), order
