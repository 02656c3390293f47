# remote_server.sh: sourced by bench/remote.sh and bench/remote_cargo.sh: a
# remote cache server for a benchmark, Debian's nginx with WebDAV on
# loopback in $srv (which it empties), and bench/delay_proxy.py in front of
# it adding 5 ms and 20 ms of round-trip time (this kernel has no netem).
# Sets port, p5port, p20port; everything is stopped when the script exits.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port) p5port=$(free_port) p20port=$(free_port)
rm -rf "$srv" && mkdir -p "$srv/data" "$srv/tmp"
cat > "$srv/nginx.conf" <<CONF
worker_processes 2;
pid $srv/nginx.pid;
error_log $srv/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $srv/tmp;
  server {
    listen 127.0.0.1:$port;
    root $srv/data;
    client_max_body_size 0;
    location / { dav_methods PUT DELETE; create_full_put_path on; }
  }
}
CONF
nginx -c "$srv/nginx.conf" -g 'daemon on;'
python3 "$(dirname "${BASH_SOURCE[0]}")/delay_proxy.py" "$p5port" "$port" 5 >/dev/null 2>&1 &
p5=$!
python3 "$(dirname "${BASH_SOURCE[0]}")/delay_proxy.py" "$p20port" "$port" 20 >/dev/null 2>&1 &
p20=$!
trap 'kill $p5 $p20 2>/dev/null; kill "$(cat "$srv/nginx.pid")" 2>/dev/null' EXIT
sleep 0.5

# The cache directory, server URL and whether the build fetches ahead (the
# last build's manifest) of a cached mode, in $cache, $remote and
# $prefetch; empties what the mode must start without (a machine's local
# cache, the server). $1: the mode; $2: a prefix for cache directories.
remote_mode() {
  local mode=$1 prefix=$2
  remote="" prefetch=yes
  case $mode in *-noprefetch) prefetch=no ;; esac
  case ${mode%-noprefetch} in
    local-cold | local-warm | local-warm-nohashes) cache=$prefix-local ;;
    upload) cache=$prefix-a; remote=http://127.0.0.1:$port ;;
    upload-5ms) cache=$prefix-a; remote=http://127.0.0.1:$p5port ;;
    remote-warm) cache=$prefix-b; remote=http://127.0.0.1:$port ;;
    remote-warm-5ms) cache=$prefix-b; remote=http://127.0.0.1:$p5port ;;
    remote-warm-20ms) cache=$prefix-b; remote=http://127.0.0.1:$p20port ;;
  esac
  case $mode in
    local-cold | upload | upload-5ms | remote-warm*) rm -rf "$cache" ;;  # remote-warm: another machine
  esac
  case $mode in upload | upload-5ms) rm -rf "${srv:?}/data"/* ;; esac
  # A fresh machine's floor: every entry here, but no file's hash known yet
  # (another machine hashes the compiler, headers and sources once).
  case $mode in local-warm-nohashes) rm -rf "$cache/hashes" ;; esac
}

# What the cache of a mode that used the server counted ("" for others).
remote_traffic() {
  local c
  case $1 in
    upload*) c=$2-a ;;
    remote-warm*) c=$2-b ;;
    *) return 0 ;;
  esac
  "$bsandbox" cache stats --cache="$c" | grep -E "^(hits|misses|remote)" | tr -s ' ' | tr '\n' ';'
}

remote_modes=(bare local-cold local-warm local-warm-nohashes upload remote-warm remote-warm-5ms remote-warm-5ms-noprefetch
              remote-warm-20ms upload-5ms)

# Prints the Markdown table of medians: $1 rounds, $2 what was built, then
# triples of mode, its times, its cache stats.
remote_table() {
  python3 - "$@" <<'PY'
import statistics, sys
rounds, what, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [(rest[i], list(map(float, rest[i + 1].split())), rest[i + 2]) for i in range(0, len(rest), 3)]
m = {name: statistics.median(ts) for name, ts, _ in rows}
print(f"| {what} | median wall ({rounds} rounds) | vs bare | all runs (s) | cache stats after the last |")
print("|---|---|---|---|---|")
for name, ts, stats in rows:
    print(f"| {name} | {m[name]:.2f} s | {m['bare'] / m[name]:.2f}x faster | {' '.join(f'{x:.2f}' for x in ts)} | {stats} |")
print()
print(f"- remote warm vs bare: {m['bare'] / m['remote-warm']:.1f}x on loopback, "
      f"{m['bare'] / m['remote-warm-5ms']:.1f}x with 5 ms RTT (target: at least 5x), "
      f"{m['bare'] / m['remote-warm-20ms']:.1f}x with 20 ms; local warm (the floor): {m['bare'] / m['local-warm']:.1f}x")
print(f"- a fresh machine's floor (local warm, no file hashes known): {m['bare'] / m['local-warm-nohashes']:.1f}x")
print(f"- fetching ahead (the last build's manifest) at 5 ms RTT: "
      f"{m['remote-warm-5ms-noprefetch']:.2f} s without, {m['remote-warm-5ms']:.2f} s with "
      f"({m['remote-warm-5ms-noprefetch'] / m['remote-warm-5ms']:.2f}x)")
print(f"- uploading (cold with the remote vs cold without): {100 * (m['upload'] / m['local-cold'] - 1):+.1f}% on loopback, "
      f"{100 * (m['upload-5ms'] / m['local-cold'] - 1):+.1f}% with 5 ms RTT")
PY
}
