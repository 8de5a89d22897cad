# Source this file to run Gatehouse's image and compose stack on podman on a machine like CI's
# (no systemd, no registry access, cgroup v1 sandbox):
#
#   . deploy/podman/env.sh && deploy/podman/base-image.sh && podman build ...
#
# It keeps podman's configuration, image store and network definitions in one private folder,
# GATEHOUSE_PODMAN_HOME (default ~/.cache/gatehouse-podman), pointed at by CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF: /etc/containers is left as the host
# has it, the same files serve root (CI) and a developer, the image cache survives between runs
# of fresh clones, and `rm -rf "$GATEHOUSE_PODMAN_HOME"` removes everything.

GATEHOUSE_PODMAN_HOME="${GATEHOUSE_PODMAN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-podman}"
export GATEHOUSE_PODMAN_HOME
mkdir -p "$GATEHOUSE_PODMAN_HOME/run" "$GATEHOUSE_PODMAN_HOME/networks" "$GATEHOUSE_PODMAN_HOME/tmp"

# overlay where the kernel lets this user mount it (root here: layers and containers cost no
# copy), else vfs, which works everywhere but copies every layer and every container's root.
if [ -z "${GATEHOUSE_PODMAN_DRIVER:-}" ]; then
  GATEHOUSE_PODMAN_DRIVER=vfs
  if [ "$(id -u)" = 0 ]; then
    _probe="$(mktemp -d "$GATEHOUSE_PODMAN_HOME/tmp/overlay-probe.XXXXXX")"
    mkdir -p "$_probe/lower" "$_probe/upper" "$_probe/work" "$_probe/merged"
    if mount -t overlay overlay \
      -o "lowerdir=$_probe/lower,upperdir=$_probe/upper,workdir=$_probe/work" \
      "$_probe/merged" 2>/dev/null; then
      umount "$_probe/merged"
      GATEHOUSE_PODMAN_DRIVER=overlay
    fi
    rm -rf "$_probe"
    unset _probe
  fi
fi
export GATEHOUSE_PODMAN_DRIVER
mkdir -p "$GATEHOUSE_PODMAN_HOME/storage-$GATEHOUSE_PODMAN_DRIVER"

# runc, not crun: crun's cgroup handling is refused by this sandbox; cgroupfs, as no systemd
# runs; and no default ulimits, which the sandbox does not let a container raise.
cat >"$GATEHOUSE_PODMAN_HOME/containers.conf" <<CONF
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$GATEHOUSE_PODMAN_HOME/run/libpod"
image_copy_tmp_dir = "$GATEHOUSE_PODMAN_HOME/tmp"

[network]
network_backend = "netavark"
network_config_dir = "$GATEHOUSE_PODMAN_HOME/networks"
CONF

# One image store per driver: a store cannot change its driver.
cat >"$GATEHOUSE_PODMAN_HOME/storage.conf" <<CONF
[storage]
driver = "$GATEHOUSE_PODMAN_DRIVER"
graphroot = "$GATEHOUSE_PODMAN_HOME/storage-$GATEHOUSE_PODMAN_DRIVER"
runroot = "$GATEHOUSE_PODMAN_HOME/run/storage-$GATEHOUSE_PODMAN_DRIVER"
CONF

# No registry is reachable: every image is local, named in full (docker.io/library/…).
cat >"$GATEHOUSE_PODMAN_HOME/registries.conf" <<CONF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
CONF

export CONTAINERS_CONF="$GATEHOUSE_PODMAN_HOME/containers.conf"
export CONTAINERS_STORAGE_CONF="$GATEHOUSE_PODMAN_HOME/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$GATEHOUSE_PODMAN_HOME/registries.conf"
