"""The chapter's experiments on MNIST: first-layer kernels from random / Gabor / k-means (frozen)
or an autoencoder-pretrained conv (frozen) vs supervised end-to-end, and max vs average vs L2
pooling, all on one architecture: Conv2d(1, K, 5) → ReLU → pool 4×4 (stride 4) → Linear(K·36, 10).

With a frozen first layer only the linear classifier is trained; the frozen part's features are
computed once (identical to training the whole model with the conv excluded from the optimizer).
Writes <out>/results.json and <out>/kmeans_vs_supervised.png; prints a Markdown table.

    python bench/experiments/kernels_mnist.py --train 10000 --epochs 5
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import time
import zlib

import numpy as np

import cnnfast
from cnnfast import init, nn, optim
from cnnfast.data import load_mnist
from cnnfast.train import evaluate, fit, seed_everything
from cnnfast.unsupervised import kmeans_kernels, pretrain_layerwise

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KSIZE, POOL = 5, 4


def pool_layer(kind: str) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(POOL)
    if kind == "avg":
        return nn.AvgPool2d(POOL)
    if kind == "l2":
        return nn.LPPool2d(2, POOL)
    raise ValueError(f"pool: expected max, avg or l2, got {kind!r}")


def feature_net(n_kernels: int, pool: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, n_kernels, KSIZE), nn.ReLU(), pool_layer(pool), nn.Flatten())


def n_features(n_kernels: int) -> int:
    side = (28 - KSIZE + 1) // POOL
    return n_kernels * side * side


def gabor_bank(n_kernels: int) -> np.ndarray:
    """n_kernels Gabor filters: 8 orientations × 2 scales × even/odd phase (cycled if fewer)."""
    bank = np.concatenate([init.gabor_kernels(8, 2, KSIZE, min_wavelength=3.0, phase=ph)
                           for ph in (0.0, np.pi / 2)])
    if n_kernels > len(bank):
        raise ValueError(f"--kernels: at most {len(bank)} Gabor kernels, got {n_kernels}")
    return bank[np.linspace(0, len(bank) - 1, n_kernels).round().astype(int)]


def first_layer(method: str, k: int, train_x: np.ndarray, seed: int, args) -> np.ndarray:
    g = np.random.default_rng(seed)
    if method == "random":
        return init.random_kernels(k, 1, KSIZE, rng=g)
    if method == "gabor":
        return gabor_bank(k)
    if method == "kmeans":
        return kmeans_kernels(train_x, k, KSIZE, n_patches=args.patches, spherical=True,
                              whiten=True, seed=seed)
    if method == "autoencoder":
        reseed(seed)
        model = nn.Sequential(nn.Conv2d(1, k, KSIZE), nn.ReLU())
        rec = pretrain_layerwise(model, train_x[:args.ae_images], epochs=args.ae_epochs,
                                 batch_size=64, lr=1e-3, seed=seed)
        print(f"  autoencoder reconstruction MSE {rec[0]['error_before']:.4f} -> "
              f"{rec[0]['error_after']:.4f}", flush=True)
        w = model[0].weight.data.astype(np.float64)
        return (w / np.linalg.norm(w.reshape(k, -1), axis=1)[:, None, None, None]).astype(
            np.float32)
    raise ValueError(f"method: unknown {method!r}")


def features(net: nn.Sequential, x: np.ndarray, batch: int = 500) -> np.ndarray:
    net.eval()
    return np.concatenate([net(np.ascontiguousarray(x[i:i + batch]))
                           for i in range(0, len(x), batch)])


def reseed(seed: int) -> None:
    """Fixes every random draw of a run: NumPy's global state and cnnfast.init's generator
    (layer initialization)."""
    seed_everything(seed)
    init.seed(seed)


def run_frozen(method, pool, train, test, seed, args):
    t0 = time.perf_counter()
    reseed(seed)
    net = feature_net(args.kernels, pool)
    net[0].weight.data[...] = first_layer(method, args.kernels, train[0], seed, args)
    net[0].bias.data[...] = 0
    ftr, fte = features(net, train[0]), features(net, test[0])
    clf = nn.Linear(ftr.shape[1], 10)
    opt = optim.Adam(clf.parameters(), lr=args.lr)
    fit(clf, nn.CrossEntropyLoss(), opt, (ftr, train[1]), epochs=args.epochs, batch_size=64,
        progress=False, seed=seed)
    acc = evaluate(clf, (fte, test[1]))["accuracy"]
    return acc, net[0].weight.data.copy(), time.perf_counter() - t0


def run_supervised(pool, train, test, seed, args):
    t0 = time.perf_counter()
    reseed(seed)
    model = feature_net(args.kernels, pool)
    model.append(nn.Linear(n_features(args.kernels), 10))
    opt = optim.Adam(model.parameters(), lr=args.lr)
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=args.epochs, batch_size=64,
        progress=False, seed=seed)
    acc = evaluate(model, test)["accuracy"]
    return acc, model[0].weight.data.copy(), time.perf_counter() - t0


# ---- a PNG without matplotlib ------------------------------------------------------------

def tile(weights: np.ndarray, cols: int = 8, zoom: int = 6, gap: int = 1) -> np.ndarray:
    """(K, 1, R, S) kernels → one uint8 image of a grid, each kernel min-max scaled."""
    k, _, r, s = weights.shape
    rows = -(-k // cols)
    cell_h, cell_w = r * zoom + gap, s * zoom + gap
    img = np.full((rows * cell_h + gap, cols * cell_w + gap), 255, np.uint8)
    for i, w in enumerate(weights[:, 0].astype(np.float64)):
        w = (w - w.min()) / max(w.max() - w.min(), 1e-12)
        block = np.kron((w * 255).round().astype(np.uint8), np.ones((zoom, zoom), np.uint8))
        y, x = gap + (i // cols) * cell_h, gap + (i % cols) * cell_w
        img[y:y + r * zoom, x:x + s * zoom] = block
    return img


def write_png(path: str, gray: np.ndarray) -> None:
    """8-bit grayscale PNG (zlib-compressed scanlines, filter 0)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 12) -> np.ndarray:
    h = max(len(left), len(right))
    pad = lambda a: np.pad(a, ((0, h - len(a)), (0, 0)), constant_values=255)  # noqa: E731
    return np.hstack([pad(left), np.full((h, gap), 255, np.uint8), pad(right)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data", "mnist"))
    ap.add_argument("--train", type=int, default=10000, help="training images (first N)")
    ap.add_argument("--test", type=int, default=10000, help="test images (first N)")
    ap.add_argument("--kernels", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patches", type=int, default=20000, help="k-means patches")
    ap.add_argument("--ae-images", type=int, default=5000)
    ap.add_argument("--ae-epochs", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+",
                    default=["random", "gabor", "kmeans", "autoencoder", "supervised"])
    ap.add_argument("--pools", nargs="+", default=["max", "avg", "l2"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "experiments", "out"))
    args = ap.parse_args(argv)
    cnnfast.set_num_threads(args.threads)
    tr, te = load_mnist(args.data_dir, train=True), load_mnist(args.data_dir, train=False)
    train = (np.ascontiguousarray(tr.images[:args.train]), tr.labels[:args.train])
    test = (np.ascontiguousarray(te.images[:args.test]), te.labels[:args.test])
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"cnnfast {cnnfast.__version__} commit {commit}, {cnnfast.info()['isa']}, "
          f"threads {args.threads}; train {len(train[1])}, test {len(test[1])}, "
          f"K={args.kernels}, epochs {args.epochs}, seeds {args.seeds}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    results, kernels = [], {}
    for pool in args.pools:
        for method in args.methods:
            accs = []
            for seed in args.seeds:
                if method == "supervised":
                    acc, w, secs = run_supervised(pool, train, test, seed, args)
                else:
                    acc, w, secs = run_frozen(method, pool, train, test, seed, args)
                accs.append(acc)
                kernels.setdefault(method, w)
                print(f"pool={pool:3s} {method:11s} seed={seed}: test accuracy {acc:.4f} "
                      f"({secs:.0f} s)", flush=True)
            results.append({"pool": pool, "method": method, "accuracies": accs,
                            "mean": float(np.mean(accs))})
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "commit": commit, "results": results}, f, indent=1)
    if "kmeans" in kernels and "supervised" in kernels:
        png = os.path.join(args.out, "kmeans_vs_supervised.png")
        write_png(png, side_by_side(tile(kernels["kmeans"]), tile(kernels["supervised"])))
        print(f"wrote {png} (left: k-means kernels, right: supervised)")
    print("\n| pool | " + " | ".join(args.methods) + " |")
    print("|---|" + "---|" * len(args.methods))
    for pool in args.pools:
        row = [f"{r['mean']:.4f}" for m in args.methods for r in results
               if r["pool"] == pool and r["method"] == m]
        print(f"| {pool} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
