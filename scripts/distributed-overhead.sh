#!/usr/bin/env bash
# The overhead table of docs/distributed.md: for each workload, learn2mix's training time
# per epoch (the records' train_seconds, evaluation excluded) in one process with 2
# threads against 2 MPI processes with 1 thread each, on this machine.
# Needs an l2m built with --features mpi (cargo build --release -p l2m-cli --features mpi),
# mpirun, and the datasets in DATA (default ../shared/data). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
L2M=${L2M:-target/release/l2m}
DATA=${DATA:-../shared/data}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

per_epoch() { # dir -> mean train_seconds per epoch of learn2mix, seed 0
  python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1] + "/seed-0/learn2mix/records.jsonl")]
print("%.4f" % (sum(x["train_seconds"] for x in r) / len(r)))' "$1"
}

echo "| workload | 1 process x 2 threads (s/epoch) | 2 processes x 1 thread (s/epoch) | ratio |"
echo "|---|---:|---:|---:|"
while IFS='|' read -r name args; do
  # shellcheck disable=SC2086
  RAYON_NUM_THREADS=2 "$L2M" compare $args --data-dir "$DATA" --seeds 1 \
    --strategies learn2mix -q -o "$TMP/one-$name" >/dev/null </dev/null
  # shellcheck disable=SC2086
  RAYON_NUM_THREADS=1 mpirun --allow-run-as-root -np 2 "$L2M" compare $args \
    --data-dir "$DATA" --seeds 1 --strategies learn2mix -q -o "$TMP/two-$name" >/dev/null </dev/null
  one=$(per_epoch "$TMP/one-$name")
  two=$(per_epoch "$TMP/two-$name")
  ratio=$(python3 -c "print(f'{$two / $one:.2f}x')")
  echo "| $name | $one | $two | $ratio |"
done <<'LIST'
Mean Estimation (FC, B 500)|--experiment mean-estimation --epochs 100
Wine Quality (FC, B 100)|--experiment wine-quality --epochs 100
California Housing (FC, B 1000)|--experiment california-housing --epochs 100
MNIST (LeNet-5, B 1000)|--experiment mnist --epochs 2
MNIST reconstruction (autoencoder, B 1000)|--experiment mnist-reconstruction --epochs 2
LIST
