"""BatchLoader (coverage, tails, seeded shuffling, prefetch equal to inline, early exit, errors)
and the augmentations against naive per-image references."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from cnnfast.data import (BatchLoader, Compose, RandomCrop, RandomHorizontalFlip,
                          RandomTranslation)


def _data(rng, n=23):
    return rng.standard_normal((n, 2, 5, 4)).astype(np.float32), rng.permutation(n).astype(np.int64)


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("n,b,drop_last", [(23, 5, False), (23, 5, True), (20, 5, False),
                                           (3, 7, False), (1, 1, False)])
def test_loader_covers_every_sample(rng, n, b, drop_last, prefetch):
    x, y = _data(rng, n)
    loader = BatchLoader(x, y, b, seed=4, drop_last=drop_last, prefetch=prefetch)
    batches = list(loader.epoch(3))
    assert len(batches) == len(loader) == (n // b if drop_last else -(-n // b))
    seen = np.concatenate([yb for _, yb in batches])
    assert len(seen) == (n // b * b if drop_last else n) and len(set(seen.tolist())) == len(seen)
    for xb, yb in batches:  # images travel with their labels (y is a permutation: y -> row)
        inv = np.argsort(y)
        assert np.array_equal(xb, x[inv[yb]]) and xb.dtype == np.float32
        assert xb.flags.c_contiguous


def test_loader_seeded_order(rng):
    x, y = _data(rng, 50)
    a = BatchLoader(x, y, 8, seed=1)
    same = [yb for _, yb in BatchLoader(x, y, 8, seed=1, prefetch=0).epoch(2)]
    assert all(np.array_equal(p, q) for p, q in zip([yb for _, yb in a.epoch(2)], same))
    e2, e3 = a.order(2), a.order(3)
    assert not np.array_equal(e2, e3) and not np.array_equal(e2, BatchLoader(x, y, 8, seed=2).order(2))
    assert np.array_equal(BatchLoader(x, y, 8, shuffle=False).order(5), np.arange(50))


def test_loader_augment_is_seeded_per_batch(rng):
    x, y = _data(rng, 30)
    aug = RandomTranslation(1)
    runs = [[xb for xb, _ in BatchLoader(x, y, 7, seed=9, augment=aug, prefetch=p).epoch(1)]
            for p in (0, 3)]
    assert all(np.array_equal(p, q) for p, q in zip(*runs))
    plain = [xb for xb, _ in BatchLoader(x, y, 7, seed=9).epoch(1)]
    assert any(not np.array_equal(p, q) for p, q in zip(plain, runs[0]))


def test_loader_early_exit_and_errors(rng):
    x, y = _data(rng, 40)
    before = threading.active_count()
    for _ in range(3):
        for i, _batch in enumerate(BatchLoader(x, y, 2, prefetch=1).epoch(0)):
            if i == 1:
                break
    assert threading.active_count() == before  # producer threads have exited

    def boom(xb, rng_):
        raise RuntimeError("augment failed")
    with pytest.raises(RuntimeError, match="augment failed"):
        list(BatchLoader(x, y, 4, augment=boom).epoch(0))
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(x, y, 0)
    with pytest.raises(ValueError, match="differ in length"):
        BatchLoader(x, y[:-1], 4)
    with pytest.raises(ValueError, match="empty"):
        BatchLoader(x[:0], y[:0], 4)


def _shift_ref(img, dy, dx):
    """Naive: out[c, i, j] = img[c, i - dy, j - dx] where inside, else 0."""
    out = np.zeros_like(img)
    for c in range(img.shape[0]):
        for i in range(img.shape[1]):
            for j in range(img.shape[2]):
                if 0 <= i - dy < img.shape[1] and 0 <= j - dx < img.shape[2]:
                    out[c, i, j] = img[c, i - dy, j - dx]
    return out


def test_random_translation_matches_shifts(rng):
    x = rng.standard_normal((40, 2, 6, 5)) + 3.0  # no zeros in the input
    out = RandomTranslation(2)(x, np.random.default_rng(1))
    shifts = set()
    for img, o in zip(x, out):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(o, _shift_ref(img, dy, dx))]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 10  # shifts actually vary
    assert np.array_equal(RandomTranslation(0)(x, rng), x)


def test_random_crop_matches_windows(rng):
    x = rng.standard_normal((30, 3, 7, 6)) + 3.0
    crop = RandomCrop((5, 6), padding=2)
    out = crop(x, np.random.default_rng(2))
    assert out.shape == (30, 3, 5, 6)
    for img, o in zip(x, out):
        padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
        hits = [(t, l) for t in range(7) for l in range(5)
                if np.array_equal(o, padded[:, t:t + 5, l:l + 6])]
        assert len(hits) == 1
    with pytest.raises(ValueError, match="larger than the padded"):
        RandomCrop(12, padding=1)(x, rng)
    with pytest.raises(ValueError, match="padding"):
        RandomCrop(3, padding=-1)


def test_horizontal_flip(rng):
    x = rng.standard_normal((400, 1, 3, 4))
    x_copy = x.copy()
    out = RandomHorizontalFlip(0.3)(x, np.random.default_rng(3))
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ kept) and 0.2 < flipped.mean() < 0.4
    assert np.array_equal(x, x_copy)  # input untouched
    assert np.array_equal(RandomHorizontalFlip(1.0)(x, rng), x[..., ::-1])
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        RandomHorizontalFlip()(x[0], rng)


def test_compose_is_deterministic(rng):
    x = rng.standard_normal((8, 3, 8, 8))
    aug = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip()])
    a = aug(x, np.random.default_rng(5))
    b = aug(x, np.random.default_rng(5))
    assert np.array_equal(a, b) and not np.array_equal(a, x)


def test_loader_arguments_and_augment_results_are_checked(rng):
    x, y = _data(rng, 12)
    bad = [(dict(seed=None), ValueError, "seed"), (dict(seed=-1), ValueError, "seed"),
           (dict(prefetch=None), ValueError, "prefetch"), (dict(prefetch=1.5), ValueError,
                                                            "prefetch"),
           (dict(augment=3), TypeError, "augment: expected a callable")]
    for kwargs, err, msg in bad:
        with pytest.raises(err, match=msg):
            BatchLoader(x, y, 4, **kwargs)
    with pytest.raises(TypeError, match="images: expected a numpy array"):
        BatchLoader(x.tolist(), y, 4)
    with pytest.raises(TypeError, match="labels: expected integer class indices, got float64"):
        BatchLoader(x, y + 0.1, 4)  # 1.1 was cut to 1 silently
    with pytest.raises(ValueError, match="epoch"):
        next(BatchLoader(x, y, 4).epoch(-1))
    for wrong in (lambda xb, r: xb[:1], lambda xb, r: None, lambda xb, r: xb[0]):
        for prefetch in (0, 2):
            with pytest.raises(ValueError, match="augment returned"):
                list(BatchLoader(x, y, 4, augment=wrong, prefetch=prefetch).epoch(0))


def test_augmentation_arguments_are_checked(rng):
    for make in (lambda: RandomCrop(4.5), lambda: RandomCrop(5, padding=1.7),
                 lambda: RandomCrop((5, 0)), lambda: RandomCrop("5"),
                 lambda: RandomTranslation(1.5), lambda: RandomTranslation(-1),
                 lambda: RandomHorizontalFlip("0.5")):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(TypeError, match="wrap a single one in a list"):
        Compose(RandomHorizontalFlip())
    with pytest.raises(TypeError, match="not callable"):
        Compose([RandomHorizontalFlip(), 3])
    # a seed stands for the generator it seeds
    xb = rng.standard_normal((6, 1, 5, 5))
    for aug in (RandomCrop(3, padding=1), RandomTranslation(1), RandomHorizontalFlip(),
                Compose([RandomTranslation(1), RandomHorizontalFlip()])):
        assert np.array_equal(aug(xb, 7), aug(xb, np.random.default_rng(7)))
