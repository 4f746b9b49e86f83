"""LeNet-5 on MNIST with learn2mix in a plain PyTorch loop.

The settings are l2m's `mnist` preset (the paper's Table 3): LeNet-5, Adam at lr 1e-5,
batches of 1000, gamma 0.1, 20 epochs, pixels scaled to [-1, 1]; learn2mix starts from
the training set's class proportions and moves them once per epoch toward the
normalised class-wise mean losses of that epoch. It reads the same IDX files as l2m
(`cargo xtask fetch-data mnist` puts them in data/mnist).

One process:      python examples/pytorch/mnist_learn2mix.py
Two (DDP, CPU):   torchrun --nproc_per_node 2 examples/pytorch/mnist_learn2mix.py

Under torchrun every rank draws its own slice of the same global batch of 1000 (the
slices are disjoint and together are the batch one process would draw), the class-wise
losses are summed over ranks, and every rank makes the same alpha update.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from learn2mix import BatchSampler, ClassLosses, Mixture


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder, split):
    def find(stem):
        for name in (stem + ".gz", stem):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
        sys.exit(f"{folder}: no {stem}(.gz); run `cargo xtask fetch-data mnist` or pass --data")

    x = read_idx(find(f"{split}-images-idx3-ubyte")).astype(np.float32)
    y = read_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
    x = (x / 255.0 - 0.5) / 0.5  # [-1, 1], as l2m's MNIST
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


class LeNet5(nn.Module):
    """l2m-models' LeNet-5: conv5 (6) ReLU pool, conv5 (16) ReLU pool, 256-120-84-10."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(256, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/mnist", help="folder with the MNIST IDX files")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--batch-size", type=int, default=1000, help="the global batch")
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the curve here as JSON")
    args = p.parse_args()

    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    x, y = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    mixture = Mixture.from_labels(y, gamma=args.gamma)
    sampler = BatchSampler(y, args.batch_size, mixture, seed=args.seed, rank=rank, world_size=world)
    model = LeNet5()
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    losses = ClassLosses(10)
    curve = []
    for epoch in range(args.epochs):
        start = time.time()
        sampler.set_epoch(epoch)
        losses.reset()
        model.train()
        for idx in sampler:
            xb, yb = x[idx], y[idx]
            per_sample = F.cross_entropy(model(xb), yb, reduction="none")
            # The global batch's mean loss: DDP averages the ranks' gradients, so each
            # rank's sum is scaled by world / B (slices may differ by one sample).
            (per_sample.sum() * world / args.batch_size).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.add(per_sample, yb)
        losses.all_reduce()
        mixture.update(losses.mean())
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(x_test[i : i + 2000]).argmax(1) for i in range(0, len(x_test), 2000)])
        acc = (pred == y_test).float().mean().item()
        curve.append(acc)
        if rank == 0:
            print(
                f"epoch {epoch + 1:3d}  test accuracy {acc:.4f}  alpha min {mixture.alpha.min():.4f} "
                f"max {mixture.alpha.max():.4f}  {time.time() - start:.1f}s",
                flush=True,
            )
    if rank == 0 and args.out:
        with open(args.out, "w") as f:
            json.dump({"test_accuracy": curve, "alpha": mixture.alpha.tolist(), "world_size": world}, f)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
