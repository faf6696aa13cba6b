#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without Docker, kind
# or any registry: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd (with runc and the CNI bridge plugin from Debian),
# kubelet and kube-proxy, all built from source through the Go module proxy by
# hack/build-k8s.sh (cached) and run as plain processes.
#
#   hack/local-cluster.sh up            start (or finish starting) the cluster; waits for the node Ready
#   hack/local-cluster.sh down          stop it and undo every change to the host, even after a failed up
#   hack/local-cluster.sh import TAR... import docker-archive/OCI tars into the node's containerd
#   hack/local-cluster.sh env           print the exports to use the cluster (KUBECONFIG, PATH with kubectl, helm)
#   hack/local-cluster.sh status        show the components and the node
#
# Everything the cluster writes lives under $TROUPE_CLUSTER_DIR (state, logs,
# certificates, etcd, containerd and kubelet data); `down` removes it whole.
# Binaries stay cached under ${XDG_CACHE_HOME:-~/.cache}/troupe/bin.
#
# Network: a bridge troupe0 with 10.244.0.1/24 carries the pods and the node's
# own address; the API server, the kubelet and the registry listen on
# 10.244.0.1, every other port on 127.0.0.1. Nothing listens on the host's
# real interfaces.
#
# Registry: an OCI registry on the node, http://10.244.0.1:5000 (hack/registry,
# go-containerregistry's implementation; blobs under $TROUPE_CLUSTER_DIR),
# which `troupe push` and `troupe deploy --image 10.244.0.1:5000/REPO` write
# to and the Troupe host (a private address: plain HTTP) and containerd
# (certs.d) pull from. `env` prints TROUPE_REGISTRY.
# Services: 10.96.0.0/16 (the kubernetes Service is 10.96.0.1). No DNS addon.
#
# Needs root (it runs containers) and Debian's apt-get for the packages it
# installs when missing: containerd, runc, containernetworking-plugins,
# iptables, nftables, openssl, curl.
#
# Environment:
#   TROUPE_CLUSTER_DIR   state directory, default /tmp/troupe-cluster
#   TROUPE_CLUSTER_WAIT  seconds to wait for the node to become Ready, default 300
#   TROUPE_CLUSTER_HOSTPATHS  space-separated hostPath directories pods will
#                        create; those missing at up are deleted by down,
#                        contents and all. Default /var/lib/troupe
set -euo pipefail
shopt -s inherit_errexit

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/docker-archive.sh
source "$root/hack/lib/docker-archive.sh"

STATE=${TROUPE_CLUSTER_DIR:-/tmp/troupe-cluster}
STATE=${STATE%/}
NODE=troupe-node
BR=troupe0               # the bridge; its name also tells down what to delete
BR_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SVC_CIDR=10.96.0.0/16
SVC_IP=10.96.0.1
CNI_NET=troupe-local     # the CNI network's name, prefix of libcni's cache files
BIN=$STATE/bin PKI=$STATE/pki ETC=$STATE/etc VAR=$STATE/var RUN=$STATE/run LOG=$STATE/logs
HOSTREC=$STATE/host      # what up changed on the host, for down
CTR_SOCK=$RUN/containerd.sock
KUBECONFIG_ADMIN=$STATE/kubeconfig
REGISTRY=$BR_IP:5000     # the node's OCI registry
# System paths a component writes to although it is configured to use
# $STATE: kubelet's device-plugin and pod-resources sockets and its
# /var/log/containers links, libcni's result cache, containerd shims' sockets.
# down removes the ones up found missing, once they are empty.
# (/run/mount is libmount's lock directory, made by the first umount.)
SYSTEM_DIRS=(/var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd /run/netns /run/mount /usr/libexec/kubernetes)
# hostPath directories the cluster's pods create: the Troupe host's data
# directory by default. down deletes the ones up found missing, with their
# contents (the e2e suite's chains), so the next run starts clean.
read -ra HOSTPATH_DIRS <<<"${TROUPE_CLUSTER_HOSTPATHS:-/var/lib/troupe}"
# Sysctls the kubelet (it sets the kernel defaults it expects) and kube-proxy
# (conntrack) may change; up records them, down puts them back.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables)

T0=$SECONDS
log() { printf '[local-cluster %4ss] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root (it starts containerd and the kubelet)"
# The socket path must fit a sun_path (108 bytes), shims add to it.
[[ ${#CTR_SOCK} -lt 80 ]] || die "TROUPE_CLUSTER_DIR is too long for unix sockets: $STATE"

# ---------------------------------------------------------------- helpers

# ours <pid>: alive and started by this script. Every component's command
# line names a path under $STATE, which guards against a recycled PID.
ours() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF "$STATE/"; }
running() { [[ -f $RUN/$1.pid ]] && ours "$(cat "$RUN/$1.pid")"; }

# start <name> <cmd...>: in its own session (a Ctrl-C of the caller does not
# reach it), output to $LOG/<name>.log, PID in $RUN/<name>.pid.
start() {
  local n=$1
  shift
  if running "$n"; then
    log "$n already running (pid $(cat "$RUN/$n.pid"))"
    return
  fi
  # 8<&-: the lock up holds must not outlive up in the components.
  setsid "$@" >>"$LOG/$n.log" 2>&1 </dev/null 8<&- &
  echo $! >"$RUN/$n.pid"
  log "started $n (pid $!)"
}

# wait_for <what> <timeout s> <pidfile name or -> <cmd...>: poll until cmd
# succeeds; fail early when the component it waits on has exited.
wait_for() {
  local what=$1 timeout=$2 comp=$3 t=$SECONDS
  shift 3
  until "$@" >/dev/null 2>&1; do
    if [[ $comp != - ]] && ! running "$comp"; then
      tail -n 20 "$LOG/$comp.log" >&2 || true
      die "$comp exited while waiting for $what (log: $LOG/$comp.log)"
    fi
    ((SECONDS - t < timeout)) || die "timed out after ${timeout}s waiting for $what (logs: $LOG)"
    sleep 0.5
  done
  log "$what after $((SECONDS - t))s"
}

# put <file>: stdin to file, only when the content changed: kube-proxy exits
# when its config file is rewritten, even with the same content.
put() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr() { command ctr -a "$CTR_SOCK" "$@"; }

# ---------------------------------------------------------------- up

install_packages() {
  local missing=() p
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v nft >/dev/null || missing+=(nftables)
  for p in openssl curl; do command -v "$p" >/dev/null || missing+=("$p"); done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]} (apt-get)"
  # The packages' service units are not started (no systemd here; and on a
  # machine with one, this cluster runs its own containerd beside it).
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    die "apt-get install ${missing[*]} failed"
}

preflight() {
  # kubelet 1.37 supports cgroup v1 only with failCgroupV1: false, and needs
  # the cgroup hierarchy mounted at all.
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || die "no cgroup hierarchy at /sys/fs/cgroup"
  # Someone else's Kubernetes on this host would fight over iptables, ports and cgroups.
  if [[ ! -f $HOSTREC/sysctl ]]; then
    if iptables-save 2>/dev/null | grep -q '^:KUBE-'; then
      die "iptables has KUBE-* chains: another Kubernetes runs here, or an earlier cluster of this script was not taken down (run: $0 down)"
    fi
    if ip -4 -o addr show | awk -v br="$BR" '$2 != br && $4 ~ /^10\.244\.0\./' | grep -q .; then
      die "another interface has an address in $POD_CIDR: $(ip -4 -o addr show | grep 'inet 10\.244\.0\.')"
    fi
  fi
  local port addr
  for addr in 127.0.0.1:2379 127.0.0.1:2380 127.0.0.1:2381 127.0.0.1:10257 127.0.0.1:10259 127.0.0.1:10248 \
    127.0.0.1:10249 127.0.0.1:10256 "$BR_IP:6443" "$BR_IP:10250" "$REGISTRY"; do
    port=${addr##*:}
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && ! listener_ours "$port"; then
      die "port $port is taken by another process: $(ss -Hltnp "sport = :$port" | head -1)"
    fi
  done
}
listener_ours() { # <port>
  local pid
  for pid in $(ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    ours "$pid" || return 1
  done
}

# Record the host's state before the first change, once per cluster (a
# second up of a running cluster must not take its own changes for the
# originals).
record_host() {
  [[ -f $HOSTREC/sysctl ]] && return
  mkdir -p "$HOSTREC"
  local d k
  for d in "${SYSTEM_DIRS[@]}"; do [[ -e $d ]] || echo "$d"; done >"$HOSTREC/created-dirs"
  for d in "${HOSTPATH_DIRS[@]}"; do [[ -e $d ]] || echo "$d"; done >"$HOSTREC/hostpath-dirs"
  # nftables tables that exist now: iptables-nft creates filter/nat/mangle
  # tables on first use, down deletes the ones that were not there.
  nft list tables 2>/dev/null >"$HOSTREC/nft-tables" || true
  for k in "${SYSCTLS[@]}"; do
    sysctl -n "$k" >/dev/null 2>&1 && echo "$k=$(sysctl -n "$k" | tr '\t' ' ')"
  done >"$HOSTREC/sysctl.tmp"
  mv "$HOSTREC/sysctl.tmp" "$HOSTREC/sysctl"
}

binaries() {
  local p
  log "kube binaries (hack/build-k8s.sh: built once, then cached)"
  # Symlinks, so each component's command line names $STATE (see ours).
  while read -r p; do ln -sfn "$p" "$BIN/$(basename "$p")"; done < <(
    "$root/hack/build-k8s.sh" kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd crictl helm)
}

# The pod sandbox ("pause") image: a tiny static Go program that sleeps and
# reaps orphans, packed into a one-layer image. Cached by the hash of its source.
pause_image() {
  local cache=${TROUPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/troupe} src sum out
  src=$(cat <<'EOF'
// Command pause is a pod sandbox's process: it holds the pod's namespaces,
// reaps orphaned children and exits on SIGINT or SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
EOF
)
  sum=$(sha256sum <<<"$src" | cut -c1-12)
  out=$cache/images/pause-$sum.tar
  if [[ ! -f $out ]]; then
    local d
    mkdir -p "$cache/images"
    d=$(mktemp -d "$cache/images/.pause.XXXXXX")
    printf '%s\n' "$src" >"$d/main.go"
    printf 'module troupe.local/pause\n\ngo 1.22\n' >"$d/go.mod"
    mkdir -p "$d/rootfs"
    (cd "$d" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o rootfs/pause .)
    docker_archive "$d/rootfs" troupe.local/pause:1 '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$out" >/dev/null
    rm -rf "$d"
    log "built the pause image ($out)"
  fi
  echo "$out"
}

pki() {
  mkca() { # <name> <CN>
    [[ -f $PKI/$1.crt ]] && return
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/$1.crt" 2>/dev/null
  }
  cert() { # <name> <subject> [<extensions>], signed by $CA (default ca)
    local ca=${CA:-ca}
    [[ -f $PKI/$1.crt ]] && return
    openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -subj "$2" -out "$PKI/$1.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' \
      "${3:-extendedKeyUsage=clientAuth}" >"$PKI/$1.ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null
    rm -f "$PKI/$1.csr" "$PKI/$1.ext"
  }
  mkca ca troupe-local-ca
  mkca front-proxy-ca troupe-local-front-proxy-ca
  # The API server is reached as 10.244.0.1 (the node, kubeconfigs), 10.96.0.1
  # (the kubernetes Service, from pods) and 127.0.0.1.
  cert apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:$BR_IP,IP:$SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # The kubelet's serving certificate, so kubectl logs/exec verify it.
  cert kubelet-serving "/CN=$NODE" "extendedKeyUsage=serverAuth
subjectAltName=IP:$BR_IP,DNS:$NODE"
  cert admin "/O=system:masters/CN=troupe-local-admin"
  cert kube-controller-manager "/CN=system:kube-controller-manager"
  cert kube-scheduler "/CN=system:kube-scheduler"
  cert kube-proxy "/CN=system:kube-proxy"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
  CA=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client"
  if [[ ! -f $PKI/sa.pub ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  chmod 600 "$PKI"/*.key
}

kubeconfig() { # <file> <cert name>
  put "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: troupe-local
  cluster:
    server: https://$BR_IP:6443
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: troupe-local
  context: {cluster: troupe-local, user: $2}
current-context: troupe-local
EOF
}

configs() {
  put "$ETC/containerd.toml" <<EOF
version = 2
root = "$VAR/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$VAR/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "troupe.local/pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root may lack CAP_SYS_RESOURCE (it does in these VMs): runc then cannot
  # set the negative oom_score_adj the kubelet asks for, and every sandbox
  # fails with "can't get final child's PID from pipe". Clamp it to
  # containerd's own score instead.
  restrict_oom_score_adj = true
  # Network namespaces under $RUN, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    # certs.d/<host>/hosts.toml: the node's registry speaks plain HTTP.
    config_path = "$ETC/certs.d"
EOF
  mkdir -p "$ETC/certs.d/$REGISTRY"
  put "$ETC/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
  # isGateway false: the bridge plugin would otherwise turn on the host-wide
  # net.ipv4.ip_forward; up gives the bridge its address itself and enables
  # forwarding on the bridge only.
  put "$ETC/cni/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BR", "isGateway": false, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$VAR/cni-ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BR_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 10\n' "$CTR_SOCK" "$CTR_SOCK" | put "$ETC/crictl.yaml"
  put "$ETC/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# These VMs use cgroup v1, which kubelet >= 1.35 refuses unless told; with
# containerd 1.6 (no CRI RuntimeConfig) the driver must be named: cgroupfs.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTR_SOCK
imageServiceEndpoint: unix://$CTR_SOCK
address: $BR_IP
port: 10250
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: $VAR/pod-logs
failSwapOn: false
# Images cannot be pulled again (no registry): never garbage-collect them, and
# evict only when the disk is really full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
# Without CAP_SYS_RESOURCE the default -999 cannot be set.
oomScoreAdj: 0
volumePluginDir: $VAR/kubelet-plugins
rotateCertificates: false
serverTLSBootstrap: false
EOF
  put "$ETC/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $ETC/kube-proxy.kubeconfig}
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts on the bridge address only, never on the host's interfaces.
nodePortAddresses: ["$BR_IP/32"]
iptables: {localhostNodePorts: false}
# Zeros leave the host's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
oomScoreAdj: 0
EOF
}

network() {
  ip link show "$BR" >/dev/null 2>&1 || ip link add "$BR" type bridge
  ip -4 addr show dev "$BR" | grep -q "inet $BR_IP/" || ip addr add "$BR_IP/24" dev "$BR"
  ip link set "$BR" up
  # Pod -> ClusterIP -> pod is DNATed on the host and routed back out of the
  # bridge: forward packets arriving on the bridge, without turning on the
  # host-wide net.ipv4.ip_forward. This sysctl goes away with the bridge.
  sysctl -qw "net.ipv4.conf.$BR.forwarding=1"
}

node_ready() { # Ready=True posted by this kubelet, not a stale status from before a restart
  local out st hb
  out=$(kubectl get node "$NODE" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>/dev/null) || return 1
  st=${out%% *}
  hb=${out#* }
  [[ $st == True && (-z $KUBELET_START || ! $hb < $KUBELET_START) ]]
}

up() {
  exec 8<"$0"
  flock -n 8 || { log "another up/down is running; waiting"; flock 8; }
  install_packages
  mkdir -p "$STATE"
  chmod 0755 "$STATE" # pods of non-root users read mounted files below it
  preflight
  record_host
  mkdir -p "$BIN" "$PKI" "$ETC/cni" "$VAR" "$RUN" "$LOG"
  binaries
  local pause
  pause=$(pause_image)
  pki
  for n in admin kube-controller-manager kube-scheduler kube-proxy kubelet; do
    kubeconfig "$ETC/$n.kubeconfig" "$n"
  done
  cp "$ETC/admin.kubeconfig" "$KUBECONFIG_ADMIN.tmp" && mv -f "$KUBECONFIG_ADMIN.tmp" "$KUBECONFIG_ADMIN"
  configs
  network
  mkdir -p "$VAR/etcd" "$VAR/kubelet" "$VAR/pod-logs" "$VAR/cni-ipam" "$VAR/kcm" "$VAR/scheduler"

  start etcd "$BIN/etcd" --name "$NODE" --data-dir "$VAR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 4294967296
  start containerd containerd --config "$ETC/containerd.toml"
  # The node's OCI registry (hack/registry), built by the go command
  # (cached), listening on the bridge that network made.
  (cd "$root" && go build -o "$BIN/troupe-registry" ./hack/registry) || die "building hack/registry failed"
  start registry "$BIN/troupe-registry" -address "$REGISTRY" -dir "$VAR/registry"
  wait_for "etcd healthy" 60 etcd curl -fsS http://127.0.0.1:2379/health
  wait_for "registry serving" 60 registry curl -fsS "http://$REGISTRY/v2/"
  # The advertise address becomes the kubernetes Service's endpoint, which
  # pods must reach: it cannot be loopback, hence the bridge's address.
  # Aggregated APIs (Troupe's gateway): the API server dials the Service's
  # endpoint (the pod IP on the bridge) itself rather than its cluster IP,
  # so it does not depend on kube-proxy's rules for the host's own traffic.
  start kube-apiserver "$BIN/kube-apiserver" \
    --bind-address "$BR_IP" --advertise-address "$BR_IP" --secure-port 6443 \
    --etcd-servers http://127.0.0.1:2379 \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SVC_CIDR" --authorization-mode Node,RBAC \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --enable-admission-plugins NodeRestriction --allow-privileged=true --profiling=false
  wait_for "kube-apiserver ready" 300 kube-apiserver kubectl get --raw /readyz
  # What kubeadm binds too: the API server may use the kubelet's API (logs, exec).
  kubectl get clusterrolebinding troupe-local:apiserver-kubelet-client >/dev/null 2>&1 ||
    kubectl create clusterrolebinding troupe-local:apiserver-kubelet-client \
      --clusterrole=system:kubelet-api-admin --user=kube-apiserver-kubelet-client >/dev/null
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$ETC/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$ETC/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$ETC/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --cert-dir "$VAR/kcm" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range "$SVC_CIDR" \
    --allocate-node-cidrs=false --profiling=false --flex-volume-plugin-dir "$VAR/kubelet-plugins"
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$ETC/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$ETC/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$ETC/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --cert-dir "$VAR/scheduler" --leader-elect=false --profiling=false
  wait_for "containerd serving" 60 containerd ctr version
  # The CRI sees images in containerd's k8s.io namespace; the sandbox image
  # must be there before the first pod, as nothing can pull it.
  ctr -n k8s.io images import --all-platforms "$pause" >/dev/null

  KUBELET_START=
  running kubelet || KUBELET_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  start kubelet "$BIN/kubelet" --config "$ETC/kubelet.yaml" \
    --kubeconfig "$ETC/kubelet.kubeconfig" --root-dir "$VAR/kubelet" --cert-dir "$VAR/kubelet/pki" \
    --hostname-override "$NODE" --node-ip "$BR_IP" --v 1
  start kube-proxy "$BIN/kube-proxy" --config "$ETC/kube-proxy.yaml"
  wait_for "node $NODE Ready" "${TROUPE_CLUSTER_WAIT:-300}" kubelet node_ready
  # Pods need their namespace's ServiceAccount, which the controller manager creates.
  wait_for "default ServiceAccount" 60 kube-controller-manager kubectl -n default get serviceaccount default
  log "cluster up in $((SECONDS - T0))s; KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
}

# ---------------------------------------------------------------- down

# exited <pid>: gone, or a zombie: the components are children of init once
# up has returned, and init may take seconds to reap them.
exited() { [[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) =~ ^(Z|X|)$ ]]; }

# stop <name> [grace s]: SIGTERM, then SIGKILL after the grace period.
stop() {
  local n=$1 grace=${2:-20} pid i
  [[ -f $RUN/$n.pid ]] || return 0
  pid=$(cat "$RUN/$n.pid")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      exited "$pid" && break
      sleep 0.1
    done
    if ! exited "$pid"; then
      log "$n (pid $pid) ignored SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do exited "$pid" && break; sleep 0.1; done
    fi
    log "stopped $n (pid $pid)"
  fi
  rm -f "$RUN/$n.pid"
}

# Every step tolerates a half-started or already-stopped cluster, and a
# state directory that is partly or wholly gone.
down() {
  set +e
  exec 8<"$0"
  flock -n 8 || { log "another up/down is running; waiting"; flock 8; }
  local pods pid p f sock ns ipt t ch h d kv k v cur rules owned=0
  # Without the record of an up, KUBE-* chains and kubepods cgroups may be
  # another Kubernetes's: leave them alone.
  [[ -f $HOSTREC/sysctl ]] && owned=1

  # 1. The kubelet first, so it restarts nothing.
  stop kubelet 30
  # 2. Remove every pod sandbox through the CRI: CNI DEL (frees the veth and
  #    the IP), network namespace and shm unmounts, shims exit.
  if running containerd && [[ -x $BIN/crictl ]]; then
    pods=$("$BIN/crictl" --config "$ETC/crictl.yaml" pods -q 2>/dev/null)
    if [[ -n $pods ]]; then
      # shellcheck disable=SC2086 # one argument per pod ID
      "$BIN/crictl" --config "$ETC/crictl.yaml" stopp $pods >/dev/null 2>&1
      # shellcheck disable=SC2086
      "$BIN/crictl" --config "$ETC/crictl.yaml" rmp -f $pods >/dev/null 2>&1
      log "removed $(wc -w <<<"$pods") pod sandboxes"
    fi
  fi
  # 3. kube-proxy, then its iptables rules.
  stop kube-proxy
  [[ -x $BIN/kube-proxy ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
  # 4. containerd, then any of its shims that survived (shims outlive
  #    containerd by design). A shim is ours when its command line names our socket.
  stop containerd 30
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "-address $CTR_SOCK "; then
      log "killing leftover containerd shim (pid $pid)"
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  # Sockets of killed shims (a shim removes its /run/containerd/s socket
  # only when it exits cleanly).
  for f in "$RUN"/containerd/io.containerd.runtime.v2.task/*/*/address; do
    [[ -f $f ]] || continue
    sock=$(sed 's#^unix://##' "$f")
    [[ $sock == /run/containerd/s/* && -S $sock ]] && rm -f "$sock"
  done
  # A container process still in a kubepods cgroup (its shim died before the
  # CRI removed it) is ours: the kubelet puts nothing else there.
  ((owned)) && for pid in $(find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
    log "killing leftover pod process (pid $pid)"
    kill -KILL "$pid" 2>/dev/null
  done
  # 5. The control plane.
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver 30
  stop etcd 30
  stop registry

  # 6. Mounts under $STATE (volumes of pods the kubelet did not tear down,
  #    container root file systems, network namespaces), deepest first.
  for ((i = 0; i < 3; i++)); do
    awk -v s="$STATE/" 'index($2, s) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
  done
  # Network namespaces of pods in /run/netns (older containerd settings):
  # ours when their interface has an address of our pod network.
  for ns in /run/netns/cni-*; do
    [[ -e $ns ]] || continue
    if ip -n "${ns##*/}" -4 addr show 2>/dev/null | grep -q "inet ${BR_IP%.*}\."; then
      ip netns delete "${ns##*/}" && log "deleted network namespace ${ns##*/}"
    fi
  done

  # 7. iptables: kube-proxy --cleanup removed its rules; the kubelet's
  #    (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...) are left. up refused to start
  #    next to foreign KUBE-* chains, so every one is ours.
  ((owned)) || log "no record of an up in $STATE: iptables and kubepods cgroups left alone"
  for ipt in iptables ip6tables; do
    if ((!owned)) || ! command -v "$ipt" >/dev/null; then continue; fi
    for t in mangle nat filter; do
      "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [A-Za-z0-9_-]+ .*-j KUBE-' | sed 's/^-A/-D/' |
        while read -r rules; do eval "$ipt -w -t $t $rules" 2>/dev/null; done
      for ch in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[A-Za-z0-9-]*\) .*/\1/p'); do
        "$ipt" -w -t "$t" -F "$ch" 2>/dev/null
        "$ipt" -w -t "$t" -X "$ch" 2>/dev/null && log "removed $ipt -t $t chain $ch"
      done
    done
  done
  # nftables tables iptables-nft or kube-proxy created (kube-proxy makes
  # ip/ip6 kube-proxy tables to probe for nftables support): delete the ones
  # absent before up. They are empty now, or hold only our rules.
  if command -v nft >/dev/null && [[ -f $HOSTREC/nft-tables ]]; then
    nft list tables 2>/dev/null | while read -r _ fam tbl; do
      grep -qxF "table $fam $tbl" "$HOSTREC/nft-tables" && continue
      if [[ $tbl == kube-proxy ]] || ! nft -j list table "$fam" "$tbl" 2>/dev/null | grep -q '{"rule":'; then
        nft delete table "$fam" "$tbl" 2>/dev/null && log "deleted nftables table $fam $tbl"
      else
        log "WARN: kept nftables table $fam $tbl: it has rules"
      fi
    done
  fi

  # 8. Pod cgroups (cgroupfs driver: a kubepods tree in every hierarchy).
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    if ((!owned)) || [[ ! -d ${h}kubepods ]]; then continue; fi
    find "${h}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d ${h}kubepods ]] && log "WARN: ${h}kubepods is not empty"
  done

  # 9. The bridge (its forwarding sysctl goes with it) and the sysctls the
  #    kubelet and kube-proxy changed.
  if ip link show "$BR" >/dev/null 2>&1; then ip link delete "$BR" && log "deleted bridge $BR"; fi
  if [[ -f $HOSTREC/sysctl ]]; then
    while IFS= read -r kv; do
      k=${kv%%=*} v=${kv#*=}
      cur=$(sysctl -n "$k" 2>/dev/null | tr '\t' ' ')
      [[ $cur == "$v" ]] && continue
      sysctl -qw "$k=$v" >/dev/null 2>&1 && log "restored $k=$v (was $cur)"
    done <"$HOSTREC/sysctl"
  fi

  # 10. What the components wrote outside $STATE on paths they hard-code.
  # The kubelet's device-plugin and pod-resources sockets and checkpoints,
  # when /var/lib/kubelet did not exist before up (else another kubelet may own them).
  if grep -qxF /var/lib/kubelet "$HOSTREC/created-dirs" 2>/dev/null; then
    rm -rf /var/lib/kubelet/device-plugins /var/lib/kubelet/pod-resources /var/lib/kubelet/plugins_registry \
      /var/lib/kubelet/plugins /var/lib/kubelet/checkpoints
  fi
  # The kubelet's /var/log/containers links into $STATE.
  [[ -d /var/log/containers ]] && find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete
  # libcni's result cache (containerd 1.6 does not let it be moved): our
  # network's entries, and loopback entries of our sandboxes.
  rm -f /var/lib/cni/results/"$CNI_NET"-* 2>/dev/null
  for f in /var/lib/cni/results/cni-loopback-*-lo; do
    [[ -e $f ]] || continue
    id=${f##*/cni-loopback-}
    id=${id%-lo}
    [[ -e $RUN/containerd/io.containerd.grpc.v1.cri/sandboxes/$id || -e $VAR/containerd/io.containerd.grpc.v1.cri/sandboxes/$id ]] &&
      rm -f "$f"
  done
  # hostPath directories up found missing: only this cluster's pods wrote
  # there. Never through a mount point (--one-file-system, and the check).
  if [[ -f $HOSTREC/hostpath-dirs ]]; then
    while IFS= read -r d; do
      [[ -n $d && $d == /?* && -e $d ]] || continue
      if awk -v s="$d/" 'index($2, s) == 1 || $2 == substr(s, 1, length(s) - 1) { found = 1 } END { exit !found }' /proc/self/mounts; then
        log "WARN: kept $d: something is mounted there"
        continue
      fi
      rm -rf --one-file-system "$d" && log "removed hostPath directory $d"
    done <"$HOSTREC/hostpath-dirs"
  fi
  # System directories up found missing: remove them once empty.
  if [[ -f $HOSTREC/created-dirs ]]; then
    while IFS= read -r d; do
      [[ -e $d ]] || continue
      find "$d" -depth -type d -empty -delete 2>/dev/null
      if [[ -d $d ]] && mountpoint -q "$d" && [[ -z $(ls -A "$d") ]]; then umount "$d" && rmdir "$d"; fi
      if [[ -e $d ]]; then log "WARN: kept $d: not empty"; else log "removed $d"; fi
    done <"$HOSTREC/created-dirs"
  fi

  # 11. The state directory, unless something is still mounted below it:
  #     rm -rf would follow a bind mount into the host's files.
  if [[ -d $STATE ]]; then
    if awk -v s="$STATE/" 'index($2, s) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
      log "ERROR: still mounted under $STATE; not removing it:"
      awk -v s="$STATE/" 'index($2, s) == 1 { print "  " $2 }' /proc/self/mounts >&2
      return 1
    fi
    for n in etcd registry containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
      if running "$n"; then log "ERROR: $n still runs; not removing $STATE"; return 1; fi
    done
    rm -rf --one-file-system "$STATE" && log "removed $STATE"
  fi
  log "down in $((SECONDS - T0))s"
}

# ---------------------------------------------------------------- other commands

import() {
  [[ $# -gt 0 ]] || die "usage: $0 import IMAGE.tar..."
  running containerd || die "the cluster is not running (containerd); run: $0 up"
  local tar
  for tar in "$@"; do
    [[ -f $tar ]] || die "no such file: $tar"
    # --all-platforms: a docker-archive has no platform index to select from.
    ctr -n k8s.io images import --all-platforms "$tar" >/dev/null || die "importing $tar failed"
    log "imported $tar"
  done
  ctr -n k8s.io images ls -q | grep -v '^sha256:' >&2
  log "a pod that already runs an image of the same tag keeps the old one: restart it (kubectl rollout restart)"
}

status() {
  local n rc=0
  for n in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if running "$n"; then echo "$n: running (pid $(cat "$RUN/$n.pid"))"; else echo "$n: stopped"; rc=1; fi
  done
  [[ -f $KUBECONFIG_ADMIN ]] && kubectl get nodes -o wide 2>/dev/null
  return $rc
}

env_() {
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN PATH=$BIN:\$PATH CONTAINER_RUNTIME_ENDPOINT=unix://$CTR_SOCK TROUPE_REGISTRY=$REGISTRY" \
    "HELM_CACHE_HOME=$VAR/helm/cache HELM_CONFIG_HOME=$VAR/helm/config HELM_DATA_HOME=$VAR/helm/data"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  import) shift; import "$@" ;;
  status) status ;;
  env) env_ ;;
  *) die "usage: $0 up|down|import TAR...|status|env" ;;
esac
