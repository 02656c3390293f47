# cargo_offline.sh: sourced by bench/cargo.sh and bench/remote_cargo.sh:
# cargo from root's rustup, building offline from Debian's librust-*-dev
# crates (installed if missing) through a directory source, with
# CARGO_HOME=$1 (made).
export PATH=/root/.cargo/bin:$PATH
if ! compgen -G "/usr/share/cargo/registry/regex-1*" >/dev/null; then
  apt-get install -y -qq --no-install-recommends librust-clap-dev librust-serde-json-dev \
    librust-regex-dev librust-aho-corasick-dev >/dev/null
fi
mkdir -p "$1"
export CARGO_HOME=$1
cat > "$CARGO_HOME/config.toml" <<'TOML'
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
TOML
