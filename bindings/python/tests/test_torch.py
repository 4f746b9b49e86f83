"""With torch: DataLoader integration, tensors in ClassLosses, and two real processes
(gloo, CPU) agreeing on alpha after ClassLosses.all_reduce."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from learn2mix import BatchSampler, ClassLosses, Mixture  # noqa: E402


def test_dataloader_takes_the_sampler():
    labels = torch.tensor([0] * 30 + [1] * 10)
    ds = torch.utils.data.TensorDataset(torch.arange(40), labels)
    m = Mixture.from_labels(labels)
    s = BatchSampler(labels, 8, m, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=s)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    for idx, y in batches:
        assert len(idx) == 8
        assert torch.equal(labels[idx], y)


def test_class_losses_take_tensors():
    cl = ClassLosses(2)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 1, 1])
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    cl.add(loss, y)
    want = loss.detach().double().numpy()
    assert np.allclose(cl.mean(), [want[0], (want[1] + want[2]) / 2])


WORKER = textwrap.dedent(
    """
    import sys, json
    import numpy as np
    import torch, torch.distributed as dist
    from learn2mix import BatchSampler, ClassLosses, Mixture

    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    labels = np.repeat(np.arange(3), [90, 40, 20])
    m = Mixture.from_labels(labels, gamma=0.5)
    s = BatchSampler(labels, 30, m, seed=4, rank=rank, world_size=world)
    seen = []
    for epoch in range(2):
        s.set_epoch(epoch)
        losses = ClassLosses(3)
        for batch in s:
            seen.append(batch)
            y = labels[batch]
            # A loss that differs by rank: only the all-reduced means agree.
            losses.add((y + 1.0) * (rank + 1), y)
        losses.all_reduce()
        m.update(losses.mean())
    json.dump({"alpha": m.alpha.tolist(), "seen": seen}, open(out, "w"))
    dist.destroy_process_group()
    """
)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_agree_on_alpha(tmp_path):
    import json

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(_free_port())
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [
        subprocess.Popen([sys.executable, str(script), str(r), "2", port, str(outs[r])], env=env)
        for r in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    got = [json.loads(o.read_text()) for o in outs]
    assert got[0]["alpha"] == got[1]["alpha"]
    # Each step's slices are disjoint, their union a full global batch of 30.
    assert len(got[0]["seen"]) == len(got[1]["seen"]) == 2 * (150 // 30)
    for a, b in zip(got[0]["seen"], got[1]["seen"]):
        assert not set(a) & set(b)
        assert len(a) + len(b) == 30
    # The all-reduced losses moved alpha away from the data's proportions toward the
    # classes with the larger loss (class 2's is largest).
    alpha = np.array(got[0]["alpha"])
    assert alpha[2] > 20 / 150


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_mid_epoch(workers):
    sdl = pytest.importorskip("torchdata.stateful_dataloader")
    labels = torch.tensor([0] * 60 + [1] * 25 + [2] * 15)
    ds = torch.utils.data.TensorDataset(torch.arange(100), labels)

    def loader():
        m = Mixture.from_labels(labels)
        s = BatchSampler(labels, 10, m, seed=8)
        return sdl.StatefulDataLoader(ds, batch_sampler=s, num_workers=workers), s

    first, _ = loader()
    it = iter(first)
    for _ in range(4):
        next(it)
    state = first.state_dict()
    rest = [b[0].tolist() for b in it]
    second, _ = loader()
    second.load_state_dict(state)
    assert [b[0].tolist() for b in second] == rest
    assert len(rest) == 6
