#!/usr/bin/env bash
# Installs the OS tools the test suite drives for real (dpkg/apt, rpm/dnf, ostree, a Keystone, chromium) when
# missing. Debian package → a binary or file it provides; only missing ones are installed.
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
  # Keystone runs from the tests' own config (test/helpers/keystone.ts); the `keystone` package,
  # which would add a service and Apache, is not wanted.
  [python3-keystone]=keystone-wsgi-public
  [python3-keystoneclient]=/usr/lib/python3/dist-packages/keystoneclient/__init__.py
  # Swagger UI is driven in headless Chromium through playwright-core, which never downloads a browser.
  [chromium]=/usr/bin/chromium
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
  # Nothing installed here may start as a service: invoke-rc.d asks policy-rc.d, and 101 means
  # "action forbidden" (/usr/share/doc/init-system-helpers/README.policy-rc.d). An existing
  # policy is left as it is; one added here is removed again.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# added by multios-patch scripts/ensure-tools.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
