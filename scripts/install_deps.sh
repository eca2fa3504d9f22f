#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages shiftnorm's build, tests, benchmarks and experiments need.
set -euo pipefail
pkgs=(cmake g++ make libeigen3-dev catch2 libbenchmark-dev libdnnl-dev libjpeg-dev libpng-dev zlib1g-dev
      dataset-fashion-mnist)
# python3-torch and python3-numpy are only needed to regenerate golden files (tests/golden/*.py).
if [[ "${SHIFTNORM_WITH_TORCH:-0}" == 1 ]]; then pkgs+=(python3-torch python3-numpy); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install_deps: all Debian packages present"
fi
