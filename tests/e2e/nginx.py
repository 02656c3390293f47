"""nginx.py: a real server of Bazel's HTTP cache protocol for the tests:
Debian's nginx with its WebDAV module, started by a test on loopback with
its own configuration, pid file, logs, temporary and data directories under
a scratch directory, and stopped at exit.

PUT writes a file under the data directory (create_full_put_path makes
cas/ and ac/), GET and HEAD read it, a missing one is 404: exactly what the
protocol asks of a server, and the data directory is what the server holds
(a test reads, corrupts or forges files there as another writer would).
The access log has one line per request: "METHOD URI STATUS".
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

CONFIG = """
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 128; }}
http {{
  default_type application/octet-stream;
  log_format requests '$request_method $uri $status';
  access_log {dir}/access.log requests;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {data};
    location / {{
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
      {auth}
    }}
  }}
}}
"""


def free_port():
    """A port nothing listens on now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Nginx:
    """nginx serving DIR/data on 127.0.0.1:port. With users ({name:
    password}), every request needs Basic authentication."""

    def __init__(self, users=None):
        if not shutil.which("nginx"):
            raise FileNotFoundError("nginx is not installed (Debian: apt install nginx-light)")
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="bsandbox-nginx-"))
        atexit.register(shutil.rmtree, self.dir, True)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        os.makedirs(os.path.join(self.dir, "tmp"))
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        auth = ""
        if users:
            lines = []
            for name, password in users.items():
                hashed = subprocess.run(["openssl", "passwd", "-apr1", password], capture_output=True,
                                        text=True, check=True).stdout.strip()
                lines.append(f"{name}:{hashed}\n")
            with open(os.path.join(self.dir, "htpasswd"), "w") as f:
                f.writelines(lines)
            auth = f'auth_basic "bsandbox cache"; auth_basic_user_file {self.dir}/htpasswd;'
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(CONFIG.format(dir=self.dir, data=self.data, port=self.port, auth=auth,
                                  user="user root;" if os.geteuid() == 0 else ""))
        self.proc = None
        atexit.register(self.stop)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-e", self.error_log, "-c",
                                      os.path.join(self.dir, "nginx.conf")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr"), "wb"))
        deadline = time.time() + 20
        while not listening(self.port):
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"nginx did not start (exit {self.proc.poll()}): {self.errors()}")
            time.sleep(0.02)

    def stop(self):
        """Stops nginx (fast shutdown: connections closed) and waits."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def errors(self):
        out = ""
        for name in ("stderr", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()[-2000:]
            except FileNotFoundError:
                pass
        return out

    def requests(self):
        """[(method, uri, status)] from the access log, oldest first."""
        try:
            with open(self.access_log) as f:
                return [tuple(line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def files(self, under=""):
        """{path relative to the data directory: bytes} of every file there."""
        out = {}
        for dirpath, _, names in os.walk(os.path.join(self.data, under)):
            for name in names:
                p = os.path.join(dirpath, name)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, self.data)] = f.read()
        return out

    def restore(self, files):
        """The data directory holds exactly files (as files() gave them)."""
        for rel, data in self.files().items():
            if rel not in files:
                os.unlink(os.path.join(self.data, rel))
        for rel, data in files.items():
            p = os.path.join(self.data, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)

    def settle(self, quiet=0.5, limit=30):
        """Waits until no request has reached the server for `quiet`
        seconds (an upload made after the build returned has landed)."""
        deadline = time.time() + limit
        last = (-1, 0.0)
        while time.time() < deadline:
            size = os.path.getsize(self.access_log) if os.path.exists(self.access_log) else 0
            if size != last[0]:
                last = (size, time.time())
            elif time.time() - last[1] >= quiet:
                return
            time.sleep(0.05)
