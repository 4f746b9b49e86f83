"""The learn2mix package against its contract: numpy only (torch tests are in test_torch.py)."""

import numpy as np
import pytest

import learn2mix
from learn2mix import BatchSampler, ClassLosses, Mixture


def labels_of(sizes):
    """Labels with sizes[c] samples of class c, interleaved (not sorted by class)."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])
    rng = np.random.default_rng(7)
    return rng.permutation(labels)


def test_alpha_starts_where_asked_and_sums_to_one():
    m = Mixture(4)
    assert m.alpha.dtype == np.float64
    assert np.allclose(m.alpha, 0.25) and m.alpha.sum() == pytest.approx(1.0)
    labels = labels_of([60, 30, 10])
    m = Mixture.from_labels(labels)
    assert np.allclose(m.alpha, [0.6, 0.3, 0.1])


def test_update_is_the_papers_rule_to_the_last_bit():
    alpha0 = np.array([0.5, 0.3, 0.2])
    losses = np.array([0.2, 1.0, 3.0])
    gamma = 0.3
    m = Mixture(3, gamma=gamma, alpha=alpha0)
    got = m.update(losses)
    # alpha <- alpha + gamma (L / 1^T L - alpha), computed as l2m-core does: the target is
    # normalised, then alpha + gamma * (target - alpha).
    target = losses / losses.sum()
    want = alpha0 + gamma * (target - alpha0)
    assert np.allclose(got, want, rtol=0, atol=1e-15)
    assert got.sum() == pytest.approx(1.0, abs=1e-12)
    # Repeated steps converge to the normalised losses.
    for _ in range(200):
        m.update(losses)
    assert np.allclose(m.alpha, target, atol=1e-12)


def test_other_rules_and_the_floor():
    assert {"learn2mix", "eg", "tempered"} <= set(learn2mix.rule_names())
    eg = Mixture(2, rule="eg", eta=0.5)
    a = eg.update([1.0, 0.0])
    want = np.array([0.5 * np.exp(0.5), 0.5]) / (0.5 * np.exp(0.5) + 0.5)
    assert np.allclose(a, want, atol=1e-12)
    floored = Mixture(2, gamma=1.0, floor=0.2, alpha=[0.5, 0.5])
    a = floored.update([1.0, 0.0])
    assert a.min() >= 0.2 / 2 - 1e-12


def test_state_round_trips():
    m = Mixture(3, gamma=0.5)
    m.update([1.0, 2.0, 3.0])
    state = m.state_dict()
    n = Mixture(3, gamma=0.5)
    n.load_state_dict(state)
    assert np.array_equal(m.alpha, n.alpha)
    with pytest.raises(ValueError, match="num_classes"):
        Mixture(4).load_state_dict(state)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Mixture(3, gamma=-0.1), "gamma"),
        (lambda: Mixture(3, gamma=1.5), "gamma"),
        (lambda: Mixture(0), "num_classes"),
        (lambda: Mixture(3, rule="nope"), "expected one of learn2mix"),
        (lambda: Mixture(3, eta=0.1), "eta"),
        (lambda: Mixture(3, floor=-0.5), "floor must be in"),
        (lambda: Mixture(2, alpha=[0.5, 0.3, 0.2]), "alpha"),
        (lambda: Mixture(2).update([1.0]), "class_losses"),
        (lambda: Mixture(2).update([1.0, float("nan")]), "finite and non-negative"),
        (lambda: Mixture(2).update([1.0, -1.0]), "finite and non-negative"),
        (lambda: BatchSampler([0, 1, 2], 2, Mixture(2)), "out of range"),
        (lambda: BatchSampler([0, -1], 2, Mixture(2)), "non-negative"),
        (lambda: BatchSampler([0, 0, 0], 2, Mixture(2)), "no samples"),
        (lambda: BatchSampler([0, 1], 0, Mixture(2)), "batch_size"),
        (lambda: BatchSampler([0, 1], 2, Mixture(2), rank=2, world_size=2), "rank"),
        (lambda: BatchSampler([0, 1], 2, Mixture(2), world_size=0), "world_size"),
        (lambda: BatchSampler([0.5, 1], 2, Mixture(2)), "integers"),
        (lambda: ClassLosses(2).add([1.0, 2.0], [0]), "one loss per sample"),
        (lambda: ClassLosses(2).add([1.0], [5]), "out of range"),
    ],
)
def test_bad_arguments_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_every_batch_has_the_exact_counts_of_alpha():
    sizes = [500, 300, 150, 50]
    labels = labels_of(sizes)
    m = Mixture.from_labels(labels, gamma=0.5)
    m.update([0.1, 0.2, 0.3, 4.0])
    s = BatchSampler(labels, 100, m, seed=3)
    counts = s.batch_counts()
    assert sum(counts) == 100
    # Largest remainder of alpha * B.
    share = m.alpha * 100
    assert all(abs(c - x) < 1 for c, x in zip(counts, share))
    assert len(s) == 1000 // 100
    batches = list(s)
    assert len(batches) == len(s)
    for b in batches:
        assert len(b) == 100
        assert list(np.bincount(labels[b], minlength=4)) == counts


def test_a_class_is_used_once_before_any_sample_repeats():
    sizes = [40, 7, 13]
    labels = labels_of(sizes)
    m = Mixture(3, alpha=[0.2, 0.4, 0.4])
    s = BatchSampler(labels, 10, m, seed=1)
    seen = {c: [] for c in range(3)}
    for b in s:
        for i in b:
            seen[int(labels[i])].append(i)
    for c, order in seen.items():
        n = sizes[c]
        # Every run of n consecutive draws of class c is a permutation of the class.
        for start in range(0, len(order) - n + 1, n):
            assert sorted(order[start : start + n]) == sorted(np.flatnonzero(labels == c).tolist())
        if len(order) < n:
            assert len(set(order)) == len(order)


def test_epochs_differ_and_set_epoch_repeats_one():
    labels = labels_of([50, 50])
    m = Mixture(2)
    s = BatchSampler(labels, 10, m, seed=5)
    e0, e1 = list(s), list(s)
    assert e0 != e1
    s.set_epoch(0)
    assert list(s) == e0
    t = BatchSampler(labels, 10, m, seed=6)
    assert list(t) != e0


def test_alpha_changes_reach_the_next_epoch():
    labels = labels_of([100, 100])
    m = Mixture(2, gamma=1.0, alpha=[0.5, 0.5])
    s = BatchSampler(labels, 20, m)
    first = list(s)
    assert list(np.bincount(labels[first[0]], minlength=2)) == [10, 10]
    m.update([1.0, 3.0])
    second = list(s)
    assert list(np.bincount(labels[second[0]], minlength=2)) == [5, 15]


def test_resume_mid_epoch_gives_the_same_next_batches():
    labels = labels_of([300, 120, 80])
    m = Mixture.from_labels(labels)
    s = BatchSampler(labels, 25, m, seed=11)
    list(s)  # one whole epoch
    m.update([1.0, 2.0, 5.0])
    it = iter(s)
    head = [next(it) for _ in range(7)]
    state = s.state_dict()
    mstate = m.state_dict()
    rest = list(it)
    # A fresh process: new objects, states loaded.
    m2 = Mixture.from_labels(labels)
    m2.load_state_dict(mstate)
    s2 = BatchSampler(labels, 25, m2, seed=11)
    s2.load_state_dict(state)
    assert list(s2) == rest
    assert len(head) + len(rest) == len(s)
    # And the epoch after continues alike.
    assert list(s) == list(s2)


def test_state_between_epochs_starts_the_next_epoch():
    labels = labels_of([30, 30])
    m = Mixture(2)
    s = BatchSampler(labels, 10, m, seed=2)
    list(s)
    state = s.state_dict()
    nxt = list(s)
    s2 = BatchSampler(labels, 10, Mixture(2), seed=2)
    s2.load_state_dict(state)
    assert list(s2) == nxt
    with pytest.raises(ValueError, match="seed"):
        BatchSampler(labels, 10, m, seed=3).load_state_dict(state)


@pytest.mark.parametrize("world", [2, 3])
def test_rank_slices_are_disjoint_and_make_the_single_process_batch(world):
    labels = labels_of([211, 97, 45, 12])
    m = Mixture.from_labels(labels)
    m.update([0.5, 1.0, 2.0, 4.0])
    single = list(BatchSampler(labels, 64, m, seed=9))
    ranks = [list(BatchSampler(labels, 64, m, seed=9, rank=r, world_size=world)) for r in range(world)]
    for r in ranks:
        assert len(r) == len(single)
    for step, whole in enumerate(single):
        parts = [r[step] for r in ranks]
        union = [i for p in parts for i in p]
        assert len(union) == len(set(union)), "slices overlap"
        assert sorted(union) == sorted(whole)
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1


def test_class_losses_means_and_reset():
    cl = ClassLosses(3)
    cl.add(np.array([1.0, 2.0, 3.0, 5.0]), np.array([0, 0, 2, 2]))
    cl.add([4.0], [0])
    mean = cl.mean()
    assert mean[0] == pytest.approx(7.0 / 3) and np.isnan(mean[1]) and mean[2] == pytest.approx(4.0)
    cl.all_reduce() if _has_torch() else None  # no process group: unchanged
    assert cl.mean()[2] == pytest.approx(4.0)
    cl.reset()
    assert np.all(np.isnan(cl.mean()))


def _has_torch():
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False
