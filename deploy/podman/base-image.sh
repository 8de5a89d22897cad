#!/usr/bin/env bash
# Make the Dockerfile's base image, python:3.11-slim, from Debian's packages, for a machine that
# cannot pull from a registry. Only the image's role is the same as the official one: Debian 12
# (bookworm), its Python 3.11 as `python`, pip's CA bundle the host's.
#
#   . deploy/podman/env.sh && deploy/podman/base-image.sh
#
# The image is labelled with a hash of this recipe (this file and the CA bundle it copies in); a
# second run with the same recipe does nothing, so CI bootstraps once per change of it.
set -euo pipefail

IMAGE="${BASE_IMAGE:-docker.io/library/python:3.11-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
LABEL=org.gatehouse.base-recipe

recipe_hash() {
  cat "${BASH_SOURCE[0]}" "$CA_BUNDLE" | sha256sum | cut -c1-16
}

want="$(recipe_hash)"
have="$(podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null || true)"
if [ "$have" = "$want" ]; then
  echo "$IMAGE is up to date (recipe $want)"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "bootstrapping $SUITE from $MIRROR into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
  "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
# pip inside the build trusts what this host trusts (a proxy's CA, where there is one).
cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

tar -C "$rootfs" -c . | podman import \
  --change "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "LABEL $LABEL=$want" \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
echo "$IMAGE built (recipe $want)"
