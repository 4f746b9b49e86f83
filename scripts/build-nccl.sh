#!/usr/bin/env bash
# Builds `l2m` with `--features nccl` (data-parallel training on several GPUs, one process
# per GPU; docs/distributed.md) on a machine with or without a GPU or CUDA toolkit.
#
#   scripts/build-nccl.sh            # binary: target/nccl/release/l2m
#
# The CUDA 13 toolkit comes from ../shared/tools/cuda-build-env.sh (NVIDIA's wheels from the
# package registry); NCCL from NVIDIA's `nvidia-nccl-cu13` wheel, installed into the same
# virtual environment, whose `libnccl.so.2` is linked here and must be found at run time
# (LD_LIBRARY_PATH; PyTorch's CUDA wheels ship it under site-packages/nvidia/nccl/lib).
# The MPI part needs what the `mpi` feature needs: libopenmpi-dev and libclang-dev.
# Uses its own target folder, so the CPU build in target/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --locked >/dev/null
# shellcheck disable=SC1091
source ../shared/tools/cuda-build-env.sh "${CUDA13_PREFIX:-$HOME/.cache/cuda13}"
PREFIX=${CUDA13_PREFIX:-$HOME/.cache/cuda13}
NCCL=$("$PREFIX/venv/bin/python" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
if [ -z "$NCCL" ]; then
  "$PREFIX/venv/bin/pip" install -q nvidia-nccl-cu13
  NCCL=$("$PREFIX/venv/bin/python" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))')
fi
ln -sfn "$NCCL/libnccl.so.2" "$CUDA_ROOT/lib/libnccl.so"
ln -sfn "$NCCL/libnccl.so.2" "$CUDA_ROOT/lib/libnccl.so.2"
echo "NCCL: $NCCL"
CARGO_TARGET_DIR=target/nccl cargo build --release --locked -p l2m-cli --features nccl
echo "built target/nccl/release/l2m (run time: LD_LIBRARY_PATH with libcuda, libcudart, libcublas, libcurand and $NCCL)"
