#!/usr/bin/env bash
# Installs the OS tools the test suite drives for real (dpkg/apt, rpm/dnf, ostree) when missing.
# Debian package → a binary it provides; only missing ones are installed.
set -euo pipefail

declare -A tools=(
  [rpm]=rpmbuild
  [createrepo-c]=createrepo_c
  [dnf]=dnf
  [dnf-plugins-core]=/usr/lib/python3/dist-packages/dnf-plugins/needs_restarting.py
  [ostree]=ostree
  [dpkg-dev]=dpkg-scanpackages
  [apt-utils]=apt-ftparchive
  [openssl]=openssl
)

missing=()
for pkg in "${!tools[@]}"; do
  probe=${tools[$pkg]}
  if [[ $probe == /* ]]; then [[ -e $probe ]] || missing+=("$pkg")
  else command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "ensure-tools: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "ensure-tools: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
