"""PyTorch reference for `cargo xtask bench`: the same workloads as `l2m-bench`.

One run per process: builds a workload's data and model, times one run and prints one JSON
line {"workload", "seconds", "peak_rss_mib", "detail"}, like `l2m-bench`.

Same shapes, models, batch sizes, optimiser (Adam, lr 1e-3) and thread count as our side.
Data is synthetic with the datasets' shapes; `mnist-load` reads the real IDX files.
Training loops do what the engine's loop does per step: index a batch, forward, per-sample
loss, mean, backward, Adam step, and per-class loss sums (index_add).

Install: `pip install torch numpy` (and `pip install imbalanced-learn` for smote-cifar100).
"""

import argparse
import gzip
import json
import math
import os
import resource
import sys
import time


def _threads_from_argv():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(os.cpu_count())


# Thread count for every BLAS/OpenMP library numpy, torch or sklearn may use: it must be in
# the environment before they are imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_from_argv())

import numpy as np  # noqa: E402


def peak_rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def scaled(n, scale):
    return max(1, int(round(n * scale)))


def torch_setup(threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def pixels(torch, n, shape, classes, mean, std, seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x = (torch.from_numpy(raw).float() / 255.0 - mean) / std
    y = torch.arange(n) % classes
    return x, y


def lenet5(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def lenet_cifar(torch, classes=10):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1024, 500), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(500, classes),
    )


def autoencoder(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32),
        nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid(),
    )


def transformer(torch, vocab, max_len=500, d=64, heads=4, ff=128, classes=2, p=0.1):
    nn = torch.nn

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, d, padding_idx=0)
            pos = torch.arange(max_len).unsqueeze(1)
            div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
            pe = torch.zeros(max_len, d)
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div)
            self.register_buffer("pe", pe)
            self.layer = nn.TransformerEncoderLayer(
                d, heads, ff, p, activation="relu", batch_first=True
            )
            self.dropout = nn.Dropout(p)
            self.fc1 = nn.Linear(d, 32)
            self.fc2 = nn.Linear(32, classes)

        def forward(self, tokens):
            keep = (tokens != 0).float()
            x = self.embedding(tokens) + self.pe[: tokens.shape[1]]
            x = self.layer(x, src_key_padding_mask=tokens == 0)
            pooled = (x * keep.unsqueeze(2)).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)
            return self.fc2(torch.relu(self.fc1(self.dropout(pooled))))

    return Classifier()


DEVICE = "cpu"


def sync(torch):
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def train_epoch(torch, model, x, y, classes, batch, loss_fn):
    """One epoch as the engine runs it; returns (seconds, steps)."""
    model = model.to(DEVICE)
    x, y = x.to(DEVICE), y.to(DEVICE)
    sync(torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    n = x.shape[0]
    steps = n // batch
    started = time.perf_counter()
    perm = torch.randperm(n, device=DEVICE)
    sums = []
    for s in range(steps):
        idx = perm[s * batch:(s + 1) * batch]
        xb, yb = x[idx], y[idx]
        per_sample = loss_fn(model(xb), xb, yb)
        opt.zero_grad(set_to_none=True)
        per_sample.mean().backward()
        opt.step()
        sums.append(torch.zeros(classes, device=DEVICE).index_add_(0, yb, per_sample.detach()))
    torch.stack(sums).tolist()  # one read per epoch, as the engine does
    sync(torch)
    return time.perf_counter() - started, steps


def run(args):
    s = args.scale
    w = args.workload
    if w == "mnist-load":
        return mnist_load(args.data_dir)
    if w == "smote-cifar100":
        return smote(args)
    if w == "csv-load":
        return csv_load()
    torch = torch_setup(args.threads)
    F = torch.nn.functional
    ce = lambda out, xb, yb: F.cross_entropy(out, yb, reduction="none")
    if w == "lenet5-train":
        x, y = pixels(torch, scaled(60000, s), (1, 28, 28), 10, 0.5, 0.25, 1)
        secs, steps = train_epoch(torch, lenet5(torch), x, y, 10, 1000, ce)
        return secs, {"samples": x.shape[0], "batch_size": 1000, "steps": steps}
    if w == "autoencoder-train":
        raw = np.random.default_rng(1).integers(0, 256, size=(scaled(60000, s), 784), dtype=np.uint8)
        x = torch.from_numpy(raw).float() / 255.0
        y = torch.arange(x.shape[0]) % 10
        mse = lambda out, xb, yb: ((out - xb) ** 2).mean(1)
        secs, steps = train_epoch(torch, autoencoder(torch), x, y, 10, 1000, mse)
        return secs, {"samples": x.shape[0], "batch_size": 1000, "steps": steps}
    if w == "lenet-cifar-train":
        x, y = pixels(torch, scaled(50000, s), (3, 32, 32), 10, 0.5, 0.25, 1)
        secs, steps = train_epoch(torch, lenet_cifar(torch), x, y, 10, 1000, ce)
        return secs, {"samples": x.shape[0], "batch_size": 1000, "steps": steps}
    if w in ("transformer-train", "transformer-train-500"):
        n, length = (5000, 200) if w == "transformer-train" else (1000, 500)
        n, vocab = max(500, scaled(n, s)), 20000
        rng = np.random.default_rng(1)
        tok = np.zeros((n, length), dtype=np.int64)
        for row in tok:
            l = rng.integers(length // 5, length + 1)
            row[:l] = rng.integers(2, vocab, size=l)
        x = torch.from_numpy(tok)
        y = torch.arange(n) % 2
        secs, steps = train_epoch(torch, transformer(torch, vocab), x, y, 2, 500, ce)
        return secs, {"samples": n, "batch_size": 500, "steps": steps}
    if w == "sgemm-peak":
        # The machine's peak for PyTorch: a 2048 x 2048 f32 product, best of 5 after a warm-up.
        n = 2048
        a = torch.randn(n, n, device=DEVICE)
        b = torch.randn(n, n, device=DEVICE)
        best = float("inf")
        for i in range(6):
            sync(torch)
            started = time.perf_counter()
            torch.mm(a, b)
            sync(torch)
            t = time.perf_counter() - started
            if i > 0:
                best = min(best, t)
        flops = 2.0 * n ** 3
        return best, {"n": n, "flops": flops, "gflops_per_second": flops / best / 1e9}
    if w == "lenet5-eval":
        n = scaled(10000, s)
        x = (torch.rand(n, 1, 28, 28) * 2 - 1).to(DEVICE)
        model = lenet5(torch).eval().to(DEVICE)
        sync(torch)
        started = time.perf_counter()
        with torch.no_grad():
            for i in range(0, n, 1000):
                model(x[i:i + 1000]).argmax(1).tolist()
        return time.perf_counter() - started, {"samples": n, "batch_size": 1000}
    raise SystemExit(f"unknown workload {w!r}")


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_load(data_dir):
    folder = os.path.join(data_dir, "mnist")
    started = time.perf_counter()
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        def find(kind):
            for name in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte",
                         f"{prefix}-{kind}.idx3-ubyte", f"{prefix}-{kind}.idx1-ubyte"):
                p = os.path.join(folder, name)
                if os.path.exists(p):
                    return p
            raise SystemExit(f"{folder}: no {prefix}-{kind}-ubyte(.gz)")
        images = read_idx(find("images-idx3"))
        labels = read_idx(find("labels-idx1"))
        members = [np.nonzero(labels == c)[0] for c in range(10)]
        out[split] = [len(m) for m in members]
        assert images.shape[0] == labels.shape[0]
    return time.perf_counter() - started, out


def csv_load():
    """pandas.read_csv, then what l2m's loader also does: the features as one float32
    matrix (numbers, then the category one-hot encoded) and the rows of each class."""
    import pandas as pd

    path = os.environ["L2M_BENCH_CSV"]
    started = time.perf_counter()
    df = pd.read_csv(path)
    numeric = df.drop(columns=["segment", "label"]).to_numpy(np.float32)
    onehot = pd.get_dummies(df["segment"]).to_numpy(np.float32)
    x = np.concatenate([numeric, onehot], axis=1)
    codes, classes = pd.factorize(df["label"], sort=True)
    members = [np.nonzero(codes == c)[0] for c in range(len(classes))]
    secs = time.perf_counter() - started
    return secs, {"rows": int(x.shape[0]), "dim": int(x.shape[1]),
                  "counts": [len(m) for m in members]}


def smote(args):
    from imblearn.over_sampling import SMOTE

    counts = [int(c) for c in args.counts.split(",")]
    rng = np.random.default_rng(1)
    n = sum(counts)
    x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8).astype(np.float32)
    y = np.repeat(np.arange(len(counts)), counts)
    started = time.perf_counter()
    # imbalanced-learn needs more samples than neighbours in every class (at reduced
    # --scale the smallest classes hold fewer than 6); our SMOTE uses fewer neighbours there.
    k = min(5, min(counts) - 1)
    xs, ys = SMOTE(k_neighbors=k, random_state=0).fit_resample(x, y)
    return time.perf_counter() - started, {"after": int(xs.shape[0]), "added": int(xs.shape[0] - n)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data-dir", default="data")
    p.add_argument("--counts", default="", help="class sizes for smote-cifar100")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    global DEVICE
    DEVICE = args.device
    secs, detail = run(args)
    print(json.dumps({"workload": args.workload, "seconds": secs,
                      "peak_rss_mib": peak_rss_mib(), "detail": detail}))


if __name__ == "__main__":
    sys.exit(main())
