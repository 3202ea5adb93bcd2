"""Side-by-side benchmark of wsgid and peer WSGI servers; benches/compare.sh runs it.

Every server hosts the same application with the same processes x threads behind the
same nginx: FastCGI (fastcgi_keep_conn on, upstream keepalive) for wsgid, uWSGI and flup,
HTTP/1.1 keep-alive proxy_pass for gunicorn (gthread) and Granian. nginx's own
`return 200` is the ceiling. benches/floor, a FastCGI responder without Python that only
finds the end of each request and writes hello's answer, is the floor of a backend's CPU
per request. wrk loads each server through nginx; benches/fcgi_load loads the FastCGI
servers straight at their sockets. Hello is run a second time with nginx reaching every
server (and the floor) over a Unix socket instead of loopback TCP, as a front end on the
same host usually does. Repetitions are interleaved (every server once, then every server
again, ...) and reported as medians with min-max.

Per run it records req/s, p50/p99 latency, errors (wrk's socket errors and non-2xx
answers, fcgi_load's errors, and nginx error.log lines such as "upstream prematurely
closed" or "reset by peer", counted apart as backend errors), the backend's CPU time per
request (utime + stime of all its processes, /proc/PID/stat), RSS and PSS of each backend
process (/proc/PID/smaps_rollup) and, for the large transfers, the growth of each
process's peak RSS (VmHWM, reset through /proc/PID/clear_refs before the workload).
nginx alone (reading and dropping the POST bodies, sending the downloads from files with
sendfile) is the ceiling of the transfers. Each server, started with hello, has its
memory recorded right after its first answer. After the repetitions, each server (and
nginx alone) takes one upload and one download of LARGE_MIB MiB through nginx, with the
peak RSS growth of each of its processes; then it holds 10,000 idle keep-alive FastCGI
connections open to each FastCGI server and measures hello throughput on other
connections next to them.

It writes a Markdown report and a PNG chart, and, for a full run, the section
"Comparison with peer servers" at the end of BENCHMARKS.md.

    compare.py --wsgid BIN --fcgi-load BIN --floor BIN [--smoke] [--out FILE] [--chart FILE]
    compare.py flup-serve HOST:PORT|unix:PATH PROCESSES WORKDIR MODULE:CALLABLE   (internal)

Environment: REPS (3), DURATION (seconds per measured run, 4), WARMUP (1), IDLE_CONNS
(10000), LARGE_MIB (1024), SERVERS (all: "wsgid uwsgi flup gunicorn granian"), NGINX, WRK.
"""

import argparse
import collections
import dataclasses
import datetime
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
DJANGO_DIR = os.path.join(FIXTURES, "django_site")
VENV = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
VBIN = os.path.join(VENV, "bin")

ALL_SERVERS = ["wsgid", "uwsgi", "flup", "gunicorn", "granian"]
FASTCGI_SERVERS = {"wsgid", "uwsgi", "flup"}
SERVER_NAMES = {
    "wsgid": "wsgid",
    "uwsgi": "uWSGI",
    "flup": "flup",
    "gunicorn": "gunicorn",
    "granian": "Granian",
    "nginx": "nginx return 200",
    "nginx-static": "nginx alone",
    "floor": "floor (FastCGI, no Python)",
}
# Listen backlog of every server (wsgid's fixed one).
BACKLOG = 1024
# Upstream keepalive connections nginx caches per worker.
KEEPALIVE = 32
POST_BYTES = 1024 * 1024
POST_SHA256 = hashlib.sha256(b"x" * POST_BYTES).hexdigest()
HELLO = b"Hello, world!\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The large transfers: one upload and one download of this many bytes per server.
LARGE_MIB = 1024
# Every block of a large upload (and of the static files nginx serves alone).
LARGE_BLOCK = b"0123456789abcdef" * 4096


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- applications


class App:
    """How each server loads one application."""

    def __init__(self, key, workdir, module, wsgi_file=None, env=None):
        self.key = key
        self.workdir = workdir
        self.module = module  # module:callable, importable from workdir
        self.wsgi_file = wsgi_file  # the same as a file, for those that take one
        self.env = env or {}


def make_apps(work):
    return {
        "hello": App("hello", FIXTURES, "hello:application", os.path.join(FIXTURES, "hello.py")),
        "bench": App(
            "bench", FIXTURES, "bench_apps:application", os.path.join(FIXTURES, "bench_apps.py")
        ),
        "django": App(
            "django",
            DJANGO_DIR,
            "djsite.wsgi:application",
            env={"DJANGO_SITE_DB": os.path.join(work, "django.sqlite3")},
        ),
    }


@dataclasses.dataclass(eq=False)
class Workload:
    key: str
    title: str
    app: str
    uri: str
    layouts: list
    conns: int
    method: str = "GET"
    timeout: str = "5s"
    fcgi_load: bool = False
    hwm: bool = False
    smoke_layouts: tuple = ()
    note: str = ""
    # nginx reaches the server over a Unix socket rather than loopback TCP.
    unix: bool = False


WORKLOADS = [
    Workload("hello", "Hello world (14-byte body, fixtures/hello.py)", "hello", "/",
             ["1x1", "2x1", "1x8"], 32, fcgi_load=True, smoke_layouts=("1x1",)),
    Workload("hello-unix", "Hello world, nginx to the server over a Unix socket", "hello", "/",
             ["1x1"], 32, smoke_layouts=("1x1",), unix=True,
             note="The same as hello, but nginx connects to each server (and to the floor) "
                  "through a Unix socket, as a front end on the same host usually does: no "
                  "TCP/IP stack on either side of that hop."),
    Workload("64k", "64 KiB response", "bench", "/64k", ["1x1", "2x1"], 32),
    Workload("post1m", "1 MiB POST, answered with its SHA-256", "bench", "/upload",
             ["1x1", "2x1"], 8, method="POST", timeout="10s", hwm=True),
    Workload("download100m", "100 MiB streamed response (64 KiB chunks)", "bench",
             "/download", ["1x1", "2x1"], 4, timeout="30s", hwm=True,
             smoke_layouts=("1x1",)),
    Workload("django", "Django page (~5 KB template, SQLite session middleware)", "django",
             "/page/", ["1x1", "2x1"], 32, smoke_layouts=("1x1",)),
    Workload("sleep50", "App sleeping 50 ms, 256 concurrent requests", "bench", "/sleep",
             ["1x8", "1x64"], 256, timeout="10s",
             note="Only 1 × 8 and 1 × 64: with 1 or 2 threads every server would answer "
                  "20 or 40 requests/s and queue the rest. flup runs a thread per "
                  "connection whatever T is."),
]


def layout_pt(layout):
    p, t = layout.split("x")
    return int(p), int(t)


def layout_label(layout):
    p, t = layout_pt(layout)
    return f"{p} × {t}"


# ---------------------------------------------------------------- processes


def free_port():
    """A loopback port nobody uses now, below the kernel's ephemeral range. A port from that
    range (what binding port 0 gives) can be taken by any outgoing connection, such as
    nginx's to its upstreams or a load client's, before the server binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    for _ in range(100):
        port = random.randrange(10000, max(ephemeral, 10001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_children():
    kids = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kids[int(rest[1])].append(int(d))
    return kids


def proc_tree(root):
    """The root pid and all its descendants, root first."""
    kids = proc_children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(sorted(kids.get(pid, [])))
    return out


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # rest[0] is field 3 (state): utime is field 14, stime field 15.
        total += int(rest[11]) + int(rest[12])
    return total


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_pss_kib(pid):
    """RSS, PSS and private memory (Private_Clean + Private_Dirty) in KiB."""
    rss = pss = None
    private = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                    private += int(line.split()[1])
    except OSError:
        pass
    return rss, pss, private


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def memory(root):
    """RSS and PSS (KiB) of the root ("master", or "process" when it has no children)
    and of each of its descendants ("worker")."""
    pids = proc_tree(root)
    out = []
    for i, pid in enumerate(pids):
        rss, pss, private = rss_pss_kib(pid)
        if rss is None:
            continue
        role = ("master" if len(pids) > 1 else "process") if i == 0 else "worker"
        out.append({"pid": pid, "role": role, "comm": comm(pid), "rss": rss, "pss": pss,
                    "private": private})
    return out


def reset_hwm(pids):
    """Resets each process's peak RSS to its current RSS (clear_refs 5, Linux >= 4.0);
    returns the RSS it starts from, or the current VmHWM where the reset is refused."""
    base = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            base[pid] = status_kib(pid, "VmRSS")
        except OSError:
            base[pid] = status_kib(pid, "VmHWM")
    return base


def hwm_growth(base):
    growth = {}
    for pid, start in base.items():
        hwm = status_kib(pid, "VmHWM")
        if hwm is not None and start is not None:
            growth[pid] = hwm - start
    return growth


class Proc:
    """A process this script started, in a session of its own."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.logf = open(log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=cwd, env=full_env,
                                  start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, grace=10.0):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of its session (its workers): the group is this process's own.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()

    def tail(self, n=8):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


# ---------------------------------------------------------------- servers


def unix_path(addr):
    """The path of a "unix:PATH" address; None for anything else (a loopback port)."""
    if isinstance(addr, str) and addr.startswith("unix:"):
        return addr[len("unix:"):]
    return None


def server_command(server, app, layout, addr, wsgid_bin):
    """argv and cwd of one server listening on `addr`: a loopback port, or "unix:PATH" (a
    Unix socket every user may connect to: nginx's workers run as another user when nginx
    is started as root)."""
    p, t = layout_pt(layout)
    path = unix_path(addr)
    if path is None:
        addr = f"127.0.0.1:{addr}"
    if server == "wsgid":
        argv = [wsgid_bin, "--fastcgi", addr, "--processes", str(p), "--threads", str(t),
                "--virtualenv", VENV, "--log-level", "warn"]
        if path:
            argv += ["--socket-mode", "0666"]
        if os.geteuid() == 0:
            # wsgid refuses to run an application as root unless told to; the peers run
            # theirs as root here too.
            argv.append("--allow-root")
        if app.wsgi_file:
            argv.append(app.wsgi_file)
        else:
            argv += ["--pythonpath", app.workdir, app.module]
        return argv, None
    if server == "uwsgi":
        argv = [os.path.join(VBIN, "uwsgi"), "--fastcgi-socket", path or addr, "--master",
                "--processes", str(p), "--threads", str(t), "--disable-logging",
                "--die-on-term", "--need-app", "--listen", str(BACKLOG),
                "--virtualenv", VENV, "--chdir", app.workdir]
        if app.wsgi_file:
            argv += ["--wsgi-file", app.wsgi_file]
        else:
            argv += ["--module", app.module]
        if path:
            argv.append("--chmod-socket=666")
        return argv, None
    if server == "flup":
        return [sys.executable, os.path.abspath(__file__), "flup-serve", addr, str(p),
                app.workdir, app.module], None
    if server == "gunicorn":
        # gunicorn's default umask (0) leaves its Unix socket open to all.
        return [os.path.join(VBIN, "gunicorn"), "-k", "gthread", "-w", str(p),
                "--threads", str(t), "--bind", addr, "--backlog", str(BACKLOG),
                "--keep-alive", "75", "--log-level", "warning", "--chdir", app.workdir,
                app.module], None
    if server == "granian":
        listen = (["--uds", path, "--uds-permissions", "0o666"] if path
                  else ["--host", "127.0.0.1", "--port", addr.rsplit(":", 1)[1]])
        return [os.path.join(VBIN, "granian"), "--interface", "wsgi", *listen,
                "--workers", str(p), "--blocking-threads", str(t),
                "--http", "1", "--no-ws", "--backlog", str(BACKLOG), "--log-level",
                "warning", "--working-dir", app.workdir, app.module], app.workdir
    raise ValueError(server)


# The copies of the binaries a run uses, and the names the report gives them.
BINARY_NAMES = {}


def show_command(argv):
    """A command line for the report, with the temporary directory and the checkout
    replaced by names, and ports by PORT."""
    out = []
    for i, a in enumerate(argv):
        if i and argv[i - 1] == "--port":
            a = "PORT"
        a = BINARY_NAMES.get(a, a)
        a = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", a)
        a = a.replace(VENV, "$VENV").replace(ROOT + "/", "").replace(ROOT, ".")
        a = re.sub(r"/tmp/wsgid-compare\.[^/ ]+", "$TMP", a)
        out.append(a if re.fullmatch(r"[\w@%+=:,./$-]+", a) else "'" + a + "'")
    return " ".join(out)


# ---------------------------------------------------------------- nginx


def fastcgi_params_file(path):
    """nginx's stock fastcgi_params, but with the split a WSGI application at the root
    needs: SCRIPT_NAME "" and the whole path as PATH_INFO."""
    with open("/etc/nginx/fastcgi_params") as f:
        text = f.read()
    text = re.sub(r"(?m)^fastcgi_param\s+SCRIPT_NAME\s.*$",
                  'fastcgi_param  SCRIPT_NAME        "";\n'
                  "fastcgi_param  PATH_INFO          $uri;", text)
    with open(path, "w") as f:
        f.write(text)


def nginx_conf(ndir, listen_port, backend_port, kind, static_dir=None):
    """kind: "fastcgi", "http", "return" or "static" (nginx alone: /download and
    /large/download send files from static_dir, /upload and /large/upload read the body
    and answer 200, like the application's routes). backend_port: a loopback port, or
    "unix:PATH"."""
    if kind == "fastcgi":
        location = (f"            include {ndir}/fastcgi_params;\n"
                    "            fastcgi_keep_conn on;\n"
                    "            fastcgi_pass backend;\n")
        streaming = "            fastcgi_request_buffering off;\n"
        big = "            fastcgi_buffer_size 64k;\n            fastcgi_buffers 16 64k;\n"
    elif kind == "http":
        location = ("            proxy_http_version 1.1;\n"
                    '            proxy_set_header Connection "";\n'
                    "            proxy_set_header Host $host;\n"
                    "            proxy_pass http://backend;\n")
        streaming = "            proxy_request_buffering off;\n"
        big = "            proxy_buffer_size 64k;\n            proxy_buffers 16 64k;\n"
    else:
        location = ("            default_type text/plain;\n"
                    '            return 200 "Hello, world!\\n";\n')
        streaming = ""
    if kind == "static":
        extra = (f"        location = /download {{\n            alias {static_dir}/100m;\n"
                 "            default_type application/octet-stream;\n        }\n"
                 f"        location = /large/download {{\n            alias {static_dir}/large;\n"
                 "            default_type application/octet-stream;\n        }\n"
                 "        location = /upload {\n            return 200 \"read\\n\";\n        }\n"
                 "        location = /large/upload {\n            client_max_body_size 2g;\n"
                 "            return 200 \"read\\n\";\n        }\n")
    elif kind == "return":
        extra = ""
    else:
        # The downloads read the backend's answer in 64 KiB buffers (the default 4 KiB
        # ones cost nginx a system call per 4 KiB). The large transfers: bodies up to
        # 2 GiB streamed to the backend as they come, /large/upload reaching the
        # application as /upload.
        extra = ("        location = /download {\n" + big + location + "        }\n"
                 "        location /large/ {\n            client_max_body_size 2g;\n"
                 + streaming + big
                 + "            rewrite ^/large(/.*)$ $1 break;\n" + location
                 + "        }\n")
    if kind == "static":
        kind = "return"
    upstream = ""
    if kind != "return":
        backend = (backend_port if unix_path(backend_port)
                   else f"127.0.0.1:{backend_port}")
        upstream = (f"    upstream backend {{\n        server {backend};\n"
                    f"        keepalive {KEEPALIVE};\n    }}\n\n")
    return f"""daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {ndir}/nginx.pid;
error_log {ndir}/error.log warn;

events {{ worker_connections 4096; }}

http {{
    access_log off;
    client_body_temp_path {ndir}/client_body;
    fastcgi_temp_path {ndir}/fastcgi_temp;
    proxy_temp_path {ndir}/proxy_temp;
    scgi_temp_path {ndir}/scgi_temp;
    uwsgi_temp_path {ndir}/uwsgi_temp;
    # Request bodies (the 1 MiB POST) stay in memory; responses never spill to disk.
    client_max_body_size 2m;
    client_body_buffer_size 2m;
    fastcgi_max_temp_file_size 0;
    proxy_max_temp_file_size 0;
    sendfile on;

{upstream}    server {{
        listen 127.0.0.1:{listen_port};
        server_name localhost;
        location / {{
{location}        }}
{extra}    }}
}}
"""


class Nginx:
    def __init__(self, bin_, work, tag, backend_port, kind, static_dir=None):
        self.dir = os.path.join(work, f"nginx-{tag}")
        os.makedirs(self.dir, exist_ok=True)
        fastcgi_params_file(os.path.join(self.dir, "fastcgi_params"))
        self.port = free_port()
        self.conf = nginx_conf(self.dir, self.port, backend_port, kind, static_dir)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(self.conf)
        self.error_log = os.path.join(self.dir, "error.log")
        open(self.error_log, "a").close()
        self.proc = Proc("nginx", [bin_, "-p", self.dir, "-e", self.error_log, "-c",
                                   os.path.join(self.dir, "nginx.conf")],
                         os.path.join(self.dir, "stdout.log"))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if not self.proc.alive():
                    break
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {self.log_tail()}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_offset(self):
        return os.path.getsize(self.error_log)

    def log_since(self, offset):
        with open(self.error_log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self):
        return self.log_since(max(0, self.log_offset() - 2000))

    def stop(self):
        self.proc.stop(signal.SIGQUIT, 5)


NGINX_ERROR_KINDS = [
    ("reset", re.compile(r"reset by peer|prematurely closed|broken pipe", re.I)),
    ("refused", re.compile(r"Connection refused|no live upstreams", re.I)),
    ("timeout", re.compile(r"timed out", re.I)),
]


def nginx_messages(text):
    """The distinct messages of nginx's [error]+ lines, without time, pid, client and
    request details, with their counts."""
    out = collections.Counter()
    for line in text.splitlines():
        m = re.search(r"\[(error|crit|alert|emerg)\] \d+#\d+: (?:\*\d+ )?(.*?)(, client: .*)?$",
                      line)
        if m:
            out[re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", m.group(2))] += 1
    return dict(out)


def classify_nginx_errors(text):
    """Counts of the [error]/[crit]/[alert] lines of nginx's error.log by kind."""
    counts = collections.Counter()
    for line in text.splitlines():
        if not re.search(r"\[(error|crit|alert|emerg)\]", line):
            continue
        for kind, rx in NGINX_ERROR_KINDS:
            if rx.search(line):
                counts[kind] += 1
                break
        else:
            counts["other"] += 1
    return dict(counts)


# ---------------------------------------------------------------- HTTP checks


def http(url, data=None, timeout=30):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def check_response(wl, nginx):
    """One request of the workload through nginx, its answer checked; None when right,
    else what is wrong."""
    try:
        if wl.app == "hello":
            status, body = http(nginx.url("/"))
            ok = body == HELLO
        elif wl.key == "64k":
            status, body = http(nginx.url("/64k"))
            ok = len(body) == 65536
        elif wl.key == "post1m":
            status, body = http(nginx.url("/upload"), b"x" * POST_BYTES)
            ok = body.decode(errors="replace").strip() == POST_SHA256
        elif wl.key == "download100m":
            status, body = http(nginx.url("/download?1"))
            ok = len(body) == 1024 * 1024
        elif wl.key == "django":
            status, body = http(nginx.url("/page/"))
            ok = b"WSG-0030" in body
        elif wl.key == "sleep50":
            status, body = http(nginx.url("/sleep"))
            ok = body == b"slept\n"
        else:
            return "unknown workload"
    except (OSError, urllib.error.URLError) as e:
        return f"request failed: {e}"
    if status != 200 or not ok:
        return f"wrong answer: status {status}, {len(body)} bytes: {body[:80]!r}"
    return None


def wait_ready(proc, nginx, path, timeout=90):
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        if not proc.alive():
            return f"exited with status {proc.p.returncode}: {proc.tail()}"
        try:
            status, _ = http(nginx.url(path), timeout=5)
            if status == 200:
                return None
            last = f"status {status}"
        except urllib.error.HTTPError as e:
            last = f"status {e.code}"
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        time.sleep(0.2)
    return f"not answering after {timeout} s ({last}): {proc.tail()}"


# ---------------------------------------------------------------- load tools


def wrk_time_us(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]


def parse_wrk(text):
    def find(pat):
        m = re.search(pat, text, re.M)
        return m.group(1) if m else None

    req = find(r"^\s*(\d+) requests in")
    rps = find(r"^Requests/sec:\s*([\d.]+)")
    p50 = find(r"^\s*50%\s+(\S+)")
    p99 = find(r"^\s*99%\s+(\S+)")
    errors = int(find(r"Non-2xx or 3xx responses:\s*(\d+)") or 0)
    socket_errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        socket_errors = sum(int(g) for g in m.groups())
    return {
        "requests": int(req) if req else 0,
        "rps": float(rps) if rps else 0.0,
        "p50_us": wrk_time_us(p50) if p50 else None,
        "p99_us": wrk_time_us(p99) if p99 else None,
        "errors": errors + socket_errors,
        "non2xx": errors,
        "socket_errors": socket_errors,
    }


def parse_fcgi_load(text):
    kv = {}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            kv = dict(f.split("=", 1) for f in line.split()[1:])
    num = lambda k: float(kv[k]) if k in kv else None  # noqa: E731
    return {
        "requests": int(kv.get("requests", 0)),
        "rps": num("rps") or 0.0,
        "p50_us": num("p50_us"),
        "p99_us": num("p99_us"),
        "errors": int(kv.get("errors", 0)) if kv else 1,
    }


def large_sha256(mib):
    h = hashlib.sha256()
    for _ in range(mib * 16):
        h.update(LARGE_BLOCK)
    return h.hexdigest()


def large_transfer(port, method, path, mib, timeout=120):
    """One HTTP/1.1 request of `mib` MiB through nginx: a POST of that many bytes (sent in
    64 KiB blocks as fast as the server takes them) or a GET whose body is read and
    dropped. Returns {"seconds", "bytes" (body bytes moved), "status", "body" (up to 200
    bytes of a POST's answer)} or {"error"}."""
    total = mib * 1024 * 1024
    head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
            + (f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n"
               if method == "POST" else "")
            + "Connection: close\r\n\r\n").encode()
    t0 = time.time()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(head)
            if method == "POST":
                for _ in range(total // len(LARGE_BLOCK)):
                    sock.sendall(LARGE_BLOCK)
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            header = b""
            while b"\r\n\r\n" not in header:
                n = sock.recv_into(buf)
                if not n:
                    return {"error": f"closed before the response header: {header[:80]!r}"}
                header += bytes(view[:n])
            header, _, body_start = header.partition(b"\r\n\r\n")
            status = int(header.split(b" ", 2)[1])
            body = bytearray(body_start[:200])
            got = len(body_start)
            while True:
                n = sock.recv_into(buf)
                if not n:
                    break
                got += n
                if len(body) < 200:
                    body += view[:min(n, 200 - len(body))]
    except (OSError, ValueError, IndexError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return {"seconds": time.time() - t0, "bytes": total if method == "POST" else got,
            "status": status, "body": bytes(body).decode(errors="replace").strip()}


class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.reps = 1 if self.smoke else int(os.environ.get("REPS", "3"))
        self.duration = 1 if self.smoke else int(os.environ.get("DURATION", "4"))
        self.warmup = 0.3 if self.smoke else float(os.environ.get("WARMUP", "1"))
        self.idle_conns = int(os.environ.get("IDLE_CONNS", "300" if self.smoke else "10000"))
        self.large_mib = int(os.environ.get("LARGE_MIB", "16" if self.smoke else str(LARGE_MIB)))
        self.servers = os.environ.get("SERVERS", " ".join(ALL_SERVERS)).split()
        bad = [s for s in self.servers if s not in ALL_SERVERS]
        if bad:
            sys.exit(f"compare.py: unknown server(s) {bad}; known: {ALL_SERVERS}")
        self.nginx_bin = os.environ.get("NGINX", "/usr/sbin/nginx")
        self.wrk_bin = os.environ.get("WRK", "wrk")
        self.work = tempfile.mkdtemp(prefix="wsgid-compare.")
        self.apps = make_apps(self.work)
        self.results = []
        self.failures = []
        # Memory of each server's processes started with hello, right after its first
        # answer: {(server, layout): memory(...)} (the last repetition's).
        self.started_memory = {}
        self.large = []
        self.commands = {}
        self.post_lua = os.path.join(self.work, "post.lua")
        with open(self.post_lua, "w") as f:
            f.write('wrk.method = "POST"\n'
                    f'wrk.body = string.rep("x", {POST_BYTES})\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n')

    # ---- runs

    def wrk_argv(self, wl, url, seconds, latency=True):
        argv = [self.wrk_bin, "-t2", f"-c{wl.conns}", f"-d{seconds}s", "--timeout", wl.timeout]
        if latency:
            argv.append("--latency")
        if wl.method == "POST":
            argv += ["-s", self.post_lua]
        return argv + [url]

    def fcgi_argv(self, server, port, seconds, uri="/", conns=32):
        argv = [self.args.fcgi_load, "--addr", f"127.0.0.1:{port}", "--connections",
                str(conns), "--duration", str(seconds), "--uri", uri]
        # uWSGI ends every FastCGI connection after one response (it ignores
        # FCGI_KEEP_CONN), so its connections cannot be reused.
        if server != "uwsgi":
            argv.append("--keep-conn")
        return argv

    def measure(self, argv, pids_of):
        """Runs the load `argv`: its output, and the CPU ticks the processes of `pids_of`
        used meanwhile."""
        pids = pids_of()
        before = cpu_ticks(pids)
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, check=False).stdout
        # Processes started during the run count too (from their start).
        after = cpu_ticks(set(pids) | set(pids_of()))
        return out, after - before

    def through_nginx(self, wl, ngx, url, pids_of):
        """A warm-up, then the measured wrk run of `wl` at `url` through `ngx`: wrk's
        output, the backend's CPU ticks, and what nginx logged during the measured run."""
        subprocess.run(self.wrk_argv(wl, url, self.warmup, False), capture_output=True,
                       check=False)
        off = ngx.log_offset()
        out, ticks = self.measure(self.wrk_argv(wl, url, self.duration), pids_of)
        return out, ticks, ngx.log_since(off)

    def straight(self, server, port, uri, pids_of):
        """A warm-up, then the measured fcgi_load run straight at `port`: its output, the
        backend's CPU ticks, and the measured run's command line."""
        subprocess.run(self.fcgi_argv(server, port, self.warmup, uri), capture_output=True,
                       check=False)
        argv = self.fcgi_argv(server, port, self.duration, uri)
        out, ticks = self.measure(argv, pids_of)
        return out, ticks, argv

    def record(self, rep, wl, layout, server, client, parsed, ticks, extra):
        n = parsed["requests"]
        row = {
            "rep": rep, "workload": wl.key, "layout": layout, "server": server,
            "client": client, **parsed,
            "cpu_us_per_req": (ticks / CLK_TCK * 1e6 / n) if n and ticks is not None else None,
            **extra,
        }
        self.results.append(row)
        ngx = row.get("nginx_errors") or {}
        log(f"   {server:8} {layout:4} {client:9} {row['rps']:10.1f} req/s  p50 "
            f"{fmt_ms(row['p50_us'])} ms  p99 {fmt_ms(row['p99_us'])} ms  errors "
            f"{row['errors']}  nginx {sum(ngx.values())}  cpu "
            f"{fmt_num(row['cpu_us_per_req'])} us/req")
        return row

    def fail(self, what):
        log(f"FAILED: {what}")
        self.failures.append(what)

    def run_ceiling(self, rep):
        wl = WORKLOADS[0]
        ngx = Nginx(self.nginx_bin, self.work, f"return-{rep}", 0, "return")
        try:
            self.commands["nginx"] = "nginx: location / { return 200 \"Hello, world!\\n\"; }"
            out, _, logged = self.through_nginx(wl, ngx, ngx.url("/"), lambda: [])
            self.record(rep, wl, "-", "nginx", "wrk", parse_wrk(out), None,
                        {"nginx_errors": classify_nginx_errors(logged)})
        finally:
            ngx.stop()

    def nginx_dir(self, name, mode):
        """The run's directory `name` with `mode`, which nginx's worker processes can reach
        (they run as another user when nginx is started as root); (its path, whether it
        was just made)."""
        d = os.path.join(self.work, name)
        if os.path.isdir(d):
            return d, False
        os.makedirs(d)
        os.chmod(self.work, 0o755)
        os.chmod(d, mode)
        return d, True

    def socket_path(self, tag):
        """A path for a Unix socket nginx's workers can connect to (servers make their
        sockets open to all users)."""
        d, _ = self.nginx_dir("sockets", 0o777)
        return os.path.join(d, f"{tag}.sock")

    def run_floor(self, rep, wl):
        """benches/floor behind the same nginx (over the transport of `wl`, a hello
        workload), and straight at its TCP socket: the least CPU per request a FastCGI
        backend can use on this machine (the kernel's share of one read and one write per
        request, and almost nothing else)."""
        if wl.unix:
            port = "unix:" + self.socket_path(f"floor-{rep}")
            argv = [self.args.floor, port]
        else:
            port = free_port()
            argv = [self.args.floor, f"127.0.0.1:{port}"]
        tag = f"floor-{wl.key}-{rep}"
        proc = Proc("floor", argv, os.path.join(self.work, f"{tag}.log"))
        ngx = None
        try:
            ngx = Nginx(self.nginx_bin, self.work, tag, port, "fastcgi")
            if not wl.unix:
                self.commands["floor"] = show_command(argv)
            err = wait_ready(proc, ngx, "/")
            if err:
                self.fail(f"floor did not start: {err}")
                return
            pids_of = lambda: [proc.pid]  # noqa: E731
            out, ticks, logged = self.through_nginx(wl, ngx, ngx.url("/"), pids_of)
            self.record(rep, wl, "-", "floor", "wrk", parse_wrk(out), ticks,
                        {"nginx_errors": classify_nginx_errors(logged)})
            if wl.unix:
                return
            out, ticks, _ = self.straight("floor", port, wl.uri, pids_of)
            self.record(rep, wl, "-", "floor", "fcgi_load", parse_fcgi_load(out), ticks, {})
        finally:
            if ngx:
                ngx.stop()
            proc.stop()

    def static_files(self):
        """The files nginx serves alone: the 100 MiB and the large download's bytes."""
        d, new = self.nginx_dir("static", 0o755)
        if new:
            for name, mib in (("100m", 100), ("large", self.large_mib)):
                with open(os.path.join(d, name), "wb") as f:
                    for _ in range(mib * 16):
                        f.write(LARGE_BLOCK)
                os.chmod(os.path.join(d, name), 0o644)
        return d

    def run_static(self, rep, workloads):
        """nginx alone moving the bytes of the POST and download workloads: the ceiling
        of the transfers (it reads and drops the POST bodies, sends the file with
        sendfile)."""
        ngx = Nginx(self.nginx_bin, self.work, f"static-{rep}", 0, "static", self.static_files())
        try:
            for wl in workloads:
                out, _, logged = self.through_nginx(wl, ngx, ngx.url(wl.uri), lambda: [])
                self.record(rep, wl, "-", "nginx-static", "wrk", parse_wrk(out), None,
                            {"nginx_errors": classify_nginx_errors(logged)})
        finally:
            ngx.stop()

    def start_behind_nginx(self, server, app, layout, tag, unix=False):
        """Starts `server` serving `app` and an nginx in front of it (FastCGI or HTTP, as
        the server speaks), over a Unix socket when `unix`; returns (proc, nginx, argv, the
        server's port or "unix:PATH"). The caller stops both."""
        port = "unix:" + self.socket_path(tag) if unix else free_port()
        argv, cwd = server_command(server, app, layout, port, self.args.wsgid)
        proc = Proc(server, argv, os.path.join(self.work, f"{tag}.log"), cwd=cwd, env=app.env)
        kind = "fastcgi" if server in FASTCGI_SERVERS else "http"
        try:
            return proc, Nginx(self.nginx_bin, self.work, tag, port, kind), argv, port
        except BaseException:
            proc.stop()
            raise

    def run_group(self, rep, app_key, layout, unix, server, workloads):
        app = self.apps[app_key]
        tag = f"{server}-{app_key}-{layout}{'-unix' if unix else ''}-{rep}"
        proc, ngx, argv, port = self.start_behind_nginx(server, app, layout, tag, unix)
        self.commands[(server, app_key, layout) + (("unix",) if unix else ())] = \
            show_command(argv)
        try:
            err = wait_ready(proc, ngx, "/page/" if app_key == "django" else "/")
            if err:
                self.fail(f"{server} {layout} ({app_key}) did not start: {err}")
                return
            if app_key == "hello" and not unix:
                self.started_memory[(server, layout)] = memory(proc.pid)
            pids_of = lambda: proc_tree(proc.pid)  # noqa: E731
            for wl in workloads:
                bad = check_response(wl, ngx)
                if bad:
                    self.fail(f"{server} {layout} {wl.key}: {bad}")
                    continue
                base = reset_hwm(pids_of()) if wl.hwm else None
                out, ticks, logged = self.through_nginx(wl, ngx, ngx.url(wl.uri), pids_of)
                extra = {
                    "nginx_errors": classify_nginx_errors(logged),
                    "nginx_messages": nginx_messages(logged),
                    "memory": memory(proc.pid),
                    "command": show_command(self.wrk_argv(wl, "http://NGINX" + wl.uri,
                                                          self.duration)),
                }
                if base is not None:
                    growth = hwm_growth(base)
                    extra["hwm_growth_kib"] = max(growth.values()) if growth else None
                    extra["hwm_growth_by_pid"] = growth
                parsed = parse_wrk(out)
                if parsed["requests"] == 0:
                    log(out)
                row = self.record(rep, wl, layout, server, "wrk", parsed, ticks, extra)
                if wl.app == "hello" and (row["errors"] or not row["requests"]):
                    self.fail(f"{server} {layout} {wl.key} via nginx: {row['requests']} "
                              f"requests, {row['errors']} errors")
                if not proc.alive():
                    self.fail(f"{server} {layout} died during {wl.key}: {proc.tail()}")
                    return
                if wl.fcgi_load and server in FASTCGI_SERVERS:
                    out, ticks, fargv = self.straight(server, port, wl.uri, pids_of)
                    parsed = parse_fcgi_load(out)
                    if parsed["errors"]:
                        log(out.strip())
                    row = self.record(rep, wl, layout, server, "fcgi_load", parsed, ticks, {
                        "memory": memory(proc.pid),
                        "command": show_command(fargv),
                    })
                    if wl.key == "hello" and (row["errors"] or not row["requests"]):
                        self.fail(f"{server} {layout} hello via fcgi_load: "
                                  f"{row['requests']} requests, {row['errors']} errors")
        finally:
            ngx.stop()
            proc.stop()

    def plan(self):
        """(app, layout, over a Unix socket) groups in a fixed order, each with its
        workloads."""
        groups = collections.OrderedDict()
        for wl in WORKLOADS:
            layouts = wl.layouts
            if self.smoke:
                layouts = wl.smoke_layouts
            for layout in layouts:
                groups.setdefault((wl.app, layout, wl.unix), []).append(wl)
        return groups

    def check_servers(self):
        """Starts every server once with hello at 1 x 1 behind nginx, before any run: one
        that does not answer (a peer whose install is broken, say) is reported and left out
        of the run, rather than failing every workload it is in."""
        log("checking that every server starts")
        for server in list(self.servers):
            proc, ngx, _, _ = self.start_behind_nginx(server, self.apps["hello"], "1x1",
                                                      f"{server}-check")
            try:
                err = wait_ready(proc, ngx, "/", timeout=60)
            finally:
                ngx.stop()
                proc.stop()
            if err:
                self.fail(f"{server} does not start, left out of this run: {err}")
                self.servers.remove(server)
            else:
                log(f"   {server}: answers")

    def run(self):
        self.check_servers()
        groups = self.plan()
        for rep in range(1, self.reps + 1):
            log(f"repetition {rep}/{self.reps}")
            self.run_ceiling(rep)
            for wl in WORKLOADS:
                if wl.app == "hello" and any(wl in wls for wls in groups.values()):
                    self.run_floor(rep, wl)
            transfers = [wl for wl in WORKLOADS if wl.hwm
                         and any(wl in wls for wls in groups.values())]
            if transfers:
                self.run_static(rep, transfers)
            for (app_key, layout, unix), wls in groups.items():
                log(f"{app_key} {layout}{' over Unix sockets' if unix else ''}: "
                    f"{', '.join(w.key for w in wls)}")
                for server in self.servers:
                    self.run_group(rep, app_key, layout, unix, server, wls)
        self.large.append(self.large_test(None))
        for server in self.servers:
            self.large.append(self.large_test(server))
        self.idle = []
        for server in self.servers:
            if server in FASTCGI_SERVERS:
                self.idle.append(self.idle_test(server))

    # ---- large transfers

    def large_test(self, server):
        """One upload and one download of self.large_mib MiB through nginx (request
        buffering off) to `server` at 1 x 1, or to nginx alone when None; the peak RSS
        growth of every server process and the throughput."""
        mib = self.large_mib
        name = server or "nginx-static"
        log(f"large: {mib} MiB up and down, {name}")
        res = {"server": name, "mib": mib}
        proc = None
        ngx = None
        try:
            if server is None:
                ngx = Nginx(self.nginx_bin, self.work, "large-static", 0, "static",
                            self.static_files())
                pids_of = lambda: []  # noqa: E731
                # Once unmeasured: the file was just written, and its first read can
                # stall behind the write-back of its dirty pages.
                large_transfer(ngx.port, "GET", "/large/download", mib)
            else:
                proc, ngx, _, _ = self.start_behind_nginx(server, self.apps["bench"], "1x1",
                                                          f"large-{server}")
                err = wait_ready(proc, ngx, "/")
                if err:
                    res["error"] = f"did not start: {err}"
                    self.fail(f"large {server}: {res['error']}")
                    return res
                pids_of = lambda: proc_tree(proc.pid)  # noqa: E731
            want = large_sha256(mib)
            for direction, method, path in (("upload", "POST", "/large/upload"),
                                            ("download", "GET", f"/large/download?{mib}")):
                base = reset_hwm(pids_of())
                off = ngx.log_offset()
                r = large_transfer(ngx.port, method, path, mib)
                growth = hwm_growth(base)
                r["hwm_growth_kib"] = max(growth.values()) if growth else None
                r["rss_before"] = base
                r["nginx_log"] = nginx_messages(ngx.log_since(off))
                if "error" not in r:
                    r["mib_per_s"] = r["bytes"] / 1048576 / r["seconds"]
                    bad = (r["status"] != 200
                           or (method == "GET" and r["bytes"] != mib * 1048576)
                           or (method == "POST" and server and r["body"] != want))
                    if bad:
                        r["error"] = (f"status {r['status']}, {r['bytes']} bytes, "
                                      f"answer {r['body'][:70]!r}")
                if "error" in r:
                    log(f"   {direction}: {r['error']}")
                    if server == "wsgid" or server is None:
                        self.fail(f"large {direction} {name}: {r['error']}")
                else:
                    log(f"   {direction}: {r['mib_per_s']:.0f} MiB/s, peak RSS growth "
                        f"{fmt_mib(r['hwm_growth_kib'])} MiB")
                res[direction] = r
            if proc is not None and not proc.alive():
                res["error"] = f"died: {proc.tail()}"
                self.fail(f"large {server}: {res['error']}")
        finally:
            if ngx:
                ngx.stop()
            if proc:
                proc.stop()
        return res

    # ---- idle connections

    def idle_test(self, server):
        layout = os.environ.get("IDLE_LAYOUT", "2x1")
        n = self.idle_conns
        log(f"idle: {n} keep-alive FastCGI connections to {server} ({layout})")
        app = self.apps["hello"]
        port = free_port()
        argv, cwd = server_command(server, app, layout, port, self.args.wsgid)
        proc = Proc(server, argv, os.path.join(self.work, f"idle-{server}.log"), cwd=cwd)
        res = {"server": server, "layout": layout, "connections": n,
               "command": show_command(argv)}
        try:
            ready = False
            deadline = time.time() + 60
            while time.time() < deadline and proc.alive():
                r = subprocess.run(self.fcgi_argv(server, port, 0.2, "/", 1),
                                   capture_output=True, text=True, check=False)
                if parse_fcgi_load(r.stdout)["requests"] > 0:
                    ready = True
                    break
                time.sleep(0.3)
            if not ready:
                res["error"] = f"did not start: {proc.tail()}"
                self.fail(f"idle {server}: {res['error']}")
                return res
            mem_before = memory(proc.pid)
            t0 = time.time()
            conns, outcome = open_idle(port, n, timeout=8 if self.smoke else 30)
            res["open_seconds"] = round(time.time() - t0, 1)
            res.update(outcome)
            log(f"   opened: {outcome}")
            time.sleep(1)
            fargv = self.fcgi_argv(server, port, max(self.duration, 2), "/", 8)
            pids_of = lambda: proc_tree(proc.pid)  # noqa: E731
            out, ticks = self.measure(fargv, pids_of)
            parsed = parse_fcgi_load(out)
            res["load"] = parsed
            res["load_command"] = show_command(fargv)
            first = re.search(r"first error: (.*)", out)
            res["load_first_error"] = first.group(1) if first else None
            res["cpu_us_per_req"] = (ticks / CLK_TCK * 1e6 / parsed["requests"]
                                     if parsed["requests"] else None)
            res["memory_before"] = mem_before
            res["memory"] = memory(proc.pid)
            res["still_open"] = count_open(conns)
            res["alive"] = proc.alive()
            log(f"   load next to them: {parsed['rps']:.0f} req/s, p99 "
                f"{fmt_ms(parsed['p99_us'])} ms, errors {parsed['errors']}; still open "
                f"{res['still_open']}/{outcome['ok']}")
            for s in conns:
                s.close()
        finally:
            proc.stop()
        return res


# ---------------------------------------------------------------- idle FastCGI client


def fcgi_record(rtype, content, req_id=1):
    pad = (-len(content)) % 8
    return struct.pack(">BBHHBB", 1, rtype, req_id, len(content), pad, 0) + content + b"\0" * pad


def fcgi_nv(name, value):
    out = b""
    for x in (name, value):
        out += bytes([len(x)]) if len(x) < 128 else struct.pack(">I", len(x) | 0x80000000)
    return out + name + value


IDLE_PARAMS = [
    (b"REQUEST_METHOD", b"GET"), (b"SCRIPT_NAME", b""), (b"PATH_INFO", b"/"),
    (b"REQUEST_URI", b"/"), (b"DOCUMENT_URI", b"/"), (b"QUERY_STRING", b""),
    (b"CONTENT_TYPE", b""), (b"CONTENT_LENGTH", b""), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"GATEWAY_INTERFACE", b"CGI/1.1"), (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"REMOTE_PORT", b"40000"), (b"SERVER_ADDR", b"127.0.0.1"), (b"SERVER_PORT", b"80"),
    (b"SERVER_NAME", b"localhost"), (b"HTTP_HOST", b"localhost"),
]
# BEGIN_REQUEST (responder, FCGI_KEEP_CONN), PARAMS, empty PARAMS, empty STDIN.
IDLE_REQUEST = (fcgi_record(1, struct.pack(">HB5x", 1, 1))
                + fcgi_record(4, b"".join(fcgi_nv(n, v) for n, v in IDLE_PARAMS))
                + fcgi_record(4, b"") + fcgi_record(5, b""))


def end_request_seen(buf):
    """True once buf holds a whole FCGI_END_REQUEST record."""
    i = 0
    while i + 8 <= len(buf):
        _, rtype, _, clen, pad, _ = struct.unpack(">BBHHBB", buf[i:i + 8])
        if i + 8 + clen + pad > len(buf):
            return False
        if rtype == 3:
            return True
        i += 8 + clen + pad
    return False


def open_idle(port, n, timeout):
    """Opens n connections, makes one keep-alive hello request on each and leaves it open.
    Returns (the sockets that got their answer and are still open, outcome counts)."""
    sel = selectors.DefaultSelector()
    counts = collections.Counter()
    done = []
    pending = 0
    started = 0
    deadline = time.time() + timeout
    batch = 200
    state = {}
    while (started < n or pending) and time.time() < deadline:
        while started < n and pending < batch:
            s = socket.socket()
            s.setblocking(False)
            started += 1
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, 115):  # EINPROGRESS
                counts["connect failed"] += 1
                s.close()
                continue
            state[s] = {"phase": "connect", "buf": b""}
            sel.register(s, selectors.EVENT_WRITE)
            pending += 1
        for key, _ in sel.select(0.5):
            s = key.fileobj
            st = state[s]
            finish = None
            if st["phase"] == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish = "connect refused" if err == 111 else "connect failed"
                else:
                    try:
                        s.sendall(IDLE_REQUEST)
                        st["phase"] = "read"
                        sel.modify(s, selectors.EVENT_READ)
                    except OSError:
                        finish = "reset"
            else:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = None
                if data is None:
                    finish = "reset"
                elif not data:
                    finish = "closed before answering"
                else:
                    st["buf"] += data
                    if end_request_seen(st["buf"]):
                        finish = "ok"
            if finish:
                sel.unregister(s)
                pending -= 1
                del state[s]
                counts[finish] += 1
                if finish == "ok":
                    done.append(s)
                else:
                    s.close()
    for s in list(state):
        counts["no answer in %d s" % timeout] += 1
        sel.unregister(s)
        s.close()
    counts["not started"] += n - started
    sel.close()
    out = {"ok": counts.pop("ok", 0)}
    out["failed"] = {k: v for k, v in counts.items() if v}
    return done, out


def count_open(conns):
    """How many of the sockets the server has not closed (nothing readable, or EAGAIN)."""
    alive = 0
    for s in conns:
        try:
            data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if data:
                alive += 1  # unexpected bytes, but open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


# ---------------------------------------------------------------- report


def fmt_ms(us):
    if us is None:
        return "-"
    ms = us / 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def fmt_num(v, digits=1):
    if v is not None and v >= 100:
        return f"{v:,.0f}"
    return "-" if v is None else f"{v:.{digits}f}"


def fmt_rps(v):
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(rows):
    """Median (min-max) across repetitions of one (workload, layout, server, client)."""
    rps = [r["rps"] for r in rows]
    ngx = collections.Counter()
    for r in rows:
        ngx.update(r.get("nginx_errors") or {})
    return {
        "n": len(rows),
        "rps": median(rps), "rps_min": min(rps), "rps_max": max(rps),
        "p50_us": median([r["p50_us"] for r in rows]),
        "p99_us": median([r["p99_us"] for r in rows]),
        "errors": sum(r["errors"] for r in rows),
        "requests": sum(r["requests"] for r in rows),
        "nginx_errors": dict(ngx),
        "cpu": median([r["cpu_us_per_req"] for r in rows]),
        "hwm": median([r.get("hwm_growth_kib") for r in rows]),
        "memory": rows[-1].get("memory"),
    }


def grouped(results):
    g = collections.OrderedDict()
    for r in results:
        g.setdefault((r["workload"], r["layout"], r["server"], r["client"]), []).append(r)
    return {k: summarise(v) for k, v in g.items()}


def memory_cell(mem):
    if not mem:
        return "-"
    parts = []
    for m in mem:
        parts.append(f"{m['role']} {fmt_mib(m['rss'])}/{fmt_mib(m['pss'])}")
    return ", ".join(parts)


def versions(bench):
    v = {}
    for dist in ("uWSGI", "flup", "gunicorn", "granian", "Django", "matplotlib"):
        try:
            v[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            v[dist] = "not installed"
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=10)
        except OSError:
            return None
    r = cmd([bench.args.wsgid, "--version"])
    v["wsgid"] = r.stdout.strip() if r else "?"
    r = cmd([bench.nginx_bin, "-v"])
    v["nginx"] = r.stderr.strip().replace("nginx version: ", "") if r else "?"
    r = cmd([bench.wrk_bin, "--version"])
    v["wrk"] = " ".join((r.stdout + r.stderr).split()[:2]) if r else "?"
    v["python"] = platform.python_version()
    try:
        v["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "src"],
                               check=False).returncode
        if dirty:
            v["commit"] += " (with uncommitted changes in src/)"
    except OSError:
        v["commit"] = "?"
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    v["cpu"] = f"{cpu}, {os.cpu_count()} CPUs"
    v["kernel"] = f"{platform.system()} {platform.release()}"
    mem = status_like("/proc/meminfo", "MemTotal")
    v["memory"] = f"{mem / 1024 / 1024:.0f} GiB" if mem else "?"
    return v


def status_like(path, field):
    try:
        for line in open(path):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def chart(summary, servers, path, smoke):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layouts = [lay for lay in ("1x1", "2x1") if any(
        (("hello", lay, s, "wrk") in summary) for s in servers)]
    if not layouts:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    width = 0.8 / len(layouts)
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    for i, lay in enumerate(layouts):
        xs, ys, lo, hi = [], [], [], []
        for j, s in enumerate(servers):
            r = summary.get(("hello", lay, s, "wrk"))
            if not r or r["rps"] is None:
                continue
            xs.append(j + (i - (len(layouts) - 1) / 2) * width)
            ys.append(r["rps"])
            lo.append(r["rps"] - r["rps_min"])
            hi.append(r["rps_max"] - r["rps"])
        bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=colors[i % 3],
                      label=f"{layout_label(lay)} (processes × threads)")
        for b, y in zip(bars, ys):
            ax.annotate(f"{y:,.0f}", (b.get_x() + b.get_width() / 2, y), ha="center",
                        va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ceiling = summary.get(("hello", "-", "nginx", "wrk"))
    if ceiling and ceiling["rps"]:
        ax.axhline(ceiling["rps"], color="grey", ls="--", lw=1)
        ax.annotate(f"nginx return 200 (the ceiling): {ceiling['rps']:,.0f}",
                    (-0.45, ceiling["rps"]), ha="left", va="bottom", fontsize=8,
                    color="grey")
    ax.set_xticks(range(len(servers)))
    ax.set_xticklabels([SERVER_NAMES[s] + (" (FastCGI)" if s in FASTCGI_SERVERS else
                                           " (HTTP)") for s in servers], fontsize=9)
    ax.set_ylabel("requests/s (median, bars: min–max)")
    title = "Hello world through nginx (wrk -c32), 2-core machine"
    if smoke:
        title += " — SMOKE RUN, figures meaningless"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1, 0.86))
    ax.set_ylim(0, max([ceiling["rps"] if ceiling and ceiling["rps"] else 0] +
                       [r["rps"] or 0 for k, r in summary.items() if k[0] == "hello"]) * 1.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def server_notes():
    return f"""- **wsgid**: `--processes P --threads T`, FastCGI on TCP, `--log-level warn`.
- **uWSGI**: `--master --processes P --threads T`, `--fastcgi-socket`, `--disable-logging`,
  `--listen {BACKLOG}` (its default backlog is 100; the others queue {BACKLOG}+). uWSGI
  ignores `FCGI_KEEP_CONN`: it closes every FastCGI connection after one response, so
  nginx's upstream keepalive cannot reuse its connections, and fcgi_load runs against it
  with a new connection per request (with `--keep-conn` every second request fails with
  "closed before END_REQUEST").
- **flup** 1.0.3: `flup.server.fcgi.WSGIServer` (threaded) on a listening socket that
  `compare.py flup-serve` opens with `TCP_NODELAY` (accepted sockets inherit it) and passes
  as fd 0, the `FCGI_LISTENSOCK_FILENO` flup serves when given no `bindAddress`. For P > 1,
  `flup-serve` forks P such processes on the one socket. flup runs a thread per
  connection (its thread pool has no limit unless told; with a limit it closes the
  connections past it), so T is not applied to flup. Why not `flup.server.fcgi_fork`:
  its preforked children each serve one connection until it closes, so with nginx's
  keep-alive connections P children serve P connections and requests on the others wait
  forever. Why `TCP_NODELAY`: without it each flup response stalls about 40 ms (Nagle's
  algorithm against the client's delayed ACK), about 23 requests/s per connection.
  flup's thread pool queues a new connection, instead of starting a thread for it, while
  it counts a thread as idle; in a burst of new connections several queue behind the one
  idle thread, and once the threads hold keep-alive connections that never end, the
  queued connections are never served (the idle-connection test shows it). Each flup
  connection waits for its next record with `select()`, which takes only descriptors
  below 1024: a flup process closes the connections it accepts past that.
- **gunicorn**: `-k gthread -w P --threads T`, `--keep-alive 75` (its default of 2 s is
  shorter than nginx's 60 s upstream keepalive, which lets nginx reuse a connection
  gunicorn is closing), `--backlog {BACKLOG}`.
- **Granian**: `--interface wsgi --workers P --blocking-threads T --http 1 --no-ws`,
  `--backlog {BACKLOG}` (its default); its Rust runtime threads are its default, 1 per
  worker.
- **floor** (`benches/floor.rs`, hello workload only): one thread with a mio reactor that
  reads each request once, finds the end of its records (no params decoding, no environ,
  no Python) and writes the answer wsgid gives for hello, in one write. What it spends per
  request is the least a FastCGI backend can spend on this machine: almost all of it is
  the kernel's work in that read and that write.
"""


def write_report(bench, path, chart_path, total_seconds):
    summary = grouped(bench.results)
    v = versions(bench)
    servers = bench.servers
    load = bench.load_before
    lines = []
    w = lines.append
    w("# wsgid compared with other WSGI servers")
    w("")
    w(f"Generated by `benches/compare.sh{' --smoke' if bench.smoke else ''}` on "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} in "
      f"{total_seconds / 60:.0f} minutes, wsgid {v['commit']}.")
    if bench.smoke:
        w("")
        w("**Smoke run** (1-second runs, one repetition, a few workloads): it only checks "
          "that every server starts and answers; the figures mean nothing.")
    if load is not None and load >= 0.7:
        w("")
        w(f"**The machine was busy**: its 1-minute load average was {load:.2f} before the "
          f"run ({bench.load_after:.2f} after), so other work competed for the CPUs and the "
          "figures are noisy.")
    w("")
    w(f"Each server hosts the same application with the same processes × threads behind "
      f"the same nginx (1 worker process): FastCGI with `fastcgi_keep_conn on` and "
      f"`keepalive {KEEPALIVE}` for wsgid, uWSGI and flup; HTTP/1.1 `proxy_pass` with "
      f"`keepalive {KEEPALIVE}` for gunicorn and Granian. `nginx return 200` is nginx "
      f"answering by itself, the ceiling of every figure through nginx. wrk, nginx and "
      f"the server share the machine's {os.cpu_count()} CPUs. Every measured run lasts "
      f"{bench.duration} s after a {bench.warmup} s warm-up of the same load; the "
      f"{bench.reps} repetition(s) are interleaved (every server once, then every server "
      f"again) and each figure is their median, req/s with its min–max.")
    w("")
    if chart_path:
        rel = os.path.relpath(chart_path, os.path.dirname(os.path.abspath(path)))
        w(f"![Hello world requests/s through nginx]({rel})")
        w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    for k, label in [("cpu", "CPU"), ("memory", "memory"), ("kernel", "kernel"),
                     ("python", "Python (venv of /usr/bin/python3)"), ("wsgid", "wsgid"),
                     ("uWSGI", "uWSGI"), ("flup", "flup"), ("gunicorn", "gunicorn"),
                     ("granian", "Granian"), ("Django", "Django"), ("nginx", "nginx"),
                     ("wrk", "wrk")]:
        w(f"| {label} | {v.get(k, '?')} |")
    w("")
    w("## Results")
    w("")
    w("Latencies in ms. *errors*: wrk's socket errors (connect, read, write, timeout) and "
      "non-2xx answers, or fcgi_load's failed requests, summed over the repetitions. "
      "*nginx log*: error lines nginx logged about the backend during the runs (reset: "
      "\"reset by peer\", \"upstream prematurely closed\"; refused; timeout), which nginx "
      "may have retried on another connection. *CPU*: the backend's processes' user + "
      "system time per request, master and workers together.")
    for wl in WORKLOADS:
        keys = [k for k in summary if k[0] == wl.key]
        if not keys:
            continue
        w("")
        w(f"### {wl.title}")
        w("")
        client = (f"`wrk -t2 -c{wl.conns} --timeout {wl.timeout}"
                  f"{' -s post.lua' if wl.method == 'POST' else ''}` → nginx → `{wl.uri}`")
        w(f"Load: {client}"
          + ("; and fcgi_load (32 connections) straight at the FastCGI sockets." if
             wl.fcgi_load else "."))
        if wl.note:
            w("")
            w(wl.note)
        w("")
        hwm = wl.hwm
        w("| P × T | server | client | req/s | min–max | p50 | p99 | errors | nginx log "
          "| CPU µs/req |" + (" peak RSS growth MiB |" if hwm else ""))
        w("|---|---|---|---:|---:|---:|---:|---:|---|---:|" + ("---:|" if hwm else ""))
        order = {s: i for i, s in enumerate(["nginx"] + servers)}
        layout_order = {lay: i for i, lay in enumerate(["-"] + wl.layouts)}
        for key in sorted(keys, key=lambda k: (layout_order.get(k[1], 99), k[3] != "wrk",
                                               order.get(k[2], 99))):
            r = summary[key]
            _, lay, s, cl = key
            ngx = ", ".join(f"{k} {n}" for k, n in sorted(r["nginx_errors"].items())) or "0"
            if cl != "wrk":
                ngx = "n/a"
            cname = "wrk → nginx" if cl == "wrk" else "fcgi_load"
            if cl != "wrk" and s == "uwsgi":
                cname += " (new connection each request)"
            row = (f"| {layout_label(lay) if lay != '-' else '-'} | {SERVER_NAMES[s]} | "
                   f"{cname} | {fmt_rps(r['rps'])} | {fmt_rps(r['rps_min'])}–"
                   f"{fmt_rps(r['rps_max'])} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} "
                   f"| {r['errors']} | {ngx} | {fmt_num(r['cpu'])} |")
            if hwm:
                row += f" {fmt_mib(r['hwm'])} |"
            w(row)
        if hwm:
            w("")
            w("*Peak RSS growth*: the largest rise of one backend process's peak RSS "
              "(VmHWM, reset with `/proc/PID/clear_refs` just before the warm-up) over its "
              "RSS at that moment, during the warm-up and the measured run. *nginx alone*: "
              "nginx itself reading and dropping the POST bodies (`return 200`) or sending "
              "the same 100 MiB from a file (`sendfile on`), the ceiling of these transfers.")
            alone = summary.get((wl.key, "-", "nginx-static", "wrk"))
            if alone and alone["rps"]:
                ratios = []
                for s in servers:
                    r = summary.get((wl.key, "1x1", s, "wrk"))
                    if r and r["rps"]:
                        ratios.append(f"{SERVER_NAMES[s]} {alone['rps'] / r['rps']:.2f}×")
                w("")
                w("nginx alone against each server at 1 × 1 (how many times the server's "
                  "req/s): " + ", ".join(ratios) + ".")
    # Large transfers.
    if bench.large:
        w("")
        w(f"### {bench.large_mib:,} MiB up and down, one request each")
        w("")
        w(f"One POST of {bench.large_mib:,} MiB (`/upload`, answered with its SHA-256, "
          f"checked) and one GET of {bench.large_mib:,} MiB (`/download?{bench.large_mib}`), "
          "each on its own connection through nginx with request buffering off "
          "(`fastcgi_request_buffering off` / `proxy_request_buffering off`, "
          "`client_max_body_size 2g`), 1 × 1; the client sends and reads as fast as it can "
          "(Python, 64 KiB sends, 1 MiB reads). *nginx alone* reads and drops the upload "
          "and sends the download from a file. Peak RSS growth as above, per transfer: "
          "the largest rise of one server process's peak RSS over its RSS before it.")
        w("")
        w("| server | upload MiB/s | upload peak RSS growth MiB | download MiB/s "
          "| download peak RSS growth MiB |")
        w("|---|---:|---:|---:|---:|")
        for res in bench.large:
            cells = []
            for d in ("upload", "download"):
                r = res.get(d)
                if not r:
                    cells += [res.get("error", "-")[:80], "-"]
                elif "error" in r:
                    cells += [f"failed: {r['error'][:80]}", fmt_mib(r.get("hwm_growth_kib"))]
                else:
                    cells += [f"{r['mib_per_s']:,.0f}",
                              fmt_mib(r["hwm_growth_kib"]) if res["server"] != "nginx-static"
                              else "-"]
            w(f"| {SERVER_NAMES[res['server']]} | " + " | ".join(cells) + " |")
    # Memory right after start.
    if bench.started_memory:
        w("")
        w("### Memory right after start")
        w("")
        w("Each server started with hello, measured right after its first answer through "
          "nginx (the last repetition's). RSS/PSS in MiB; *private* is the worker's "
          "Private_Clean + Private_Dirty, the memory one more worker costs.")
        w("")
        w("| P × T | server | processes: RSS/PSS MiB | worker private MiB |")
        w("|---|---|---|---|")
        for lay in WORKLOADS[0].layouts:
            for s in servers:
                mem = bench.started_memory.get((s, lay))
                if not mem:
                    continue
                private = ", ".join(fmt_mib(m.get("private")) for m in mem
                                    if m["role"] in ("worker", "process")) or "-"
                w(f"| {layout_label(lay)} | {SERVER_NAMES[s]} | {memory_cell(mem)} | "
                  f"{private} |")
    # Memory table.
    w("")
    w("### Memory of each backend process")
    w("")
    w("RSS/PSS in MiB (`/proc/PID/smaps_rollup`) after the measured run (the last "
      "repetition's): the master (or the only process) first, then each worker. PSS "
      "shares the pages processes have in common among them.")
    w("")
    w("| workload | P × T | server | processes: RSS/PSS MiB | total PSS |")
    w("|---|---|---|---|---:|")
    for wl in WORKLOADS:
        for lay in wl.layouts:
            for s in servers:
                r = summary.get((wl.key, lay, s, "wrk"))
                if not r or not r["memory"]:
                    continue
                total = sum(m["pss"] or 0 for m in r["memory"])
                w(f"| {wl.key} | {layout_label(lay)} | {SERVER_NAMES[s]} | "
                  f"{memory_cell(r['memory'])} | {fmt_mib(total)} |")
    # Idle connections.
    if bench.idle:
        w("")
        w("### Idle keep-alive FastCGI connections")
        w("")
        n = bench.idle_conns
        w(f"{n:,} connections opened to the server (hello, "
          f"{layout_label(bench.idle[0]['layout'])}), each with one keep-alive "
          "(`FCGI_KEEP_CONN`) request answered, then left idle; then fcgi_load "
          "(8 other connections) measures hello throughput next to them, and the idle "
          "connections the server has closed meanwhile are counted. The client holds its "
          f"sockets itself (fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}).")
        w("")
        w("| server | answered | failed | still open after | hello req/s next to them "
          "| p99 | errors | RSS/PSS MiB before → after |")
        w("|---|---:|---|---:|---:|---:|---:|---|")
        for res in bench.idle:
            if "error" in res:
                w(f"| {SERVER_NAMES[res['server']]} | - | {res['error'][:120]} | - | - | - "
                  "| - | - |")
                continue
            failed = ", ".join(f"{k} {n}" for k, n in res.get("failed", {}).items()) or "0"
            ld = res.get("load", {})
            err = str(ld.get("errors", "-"))
            if ld.get("errors") and res.get("load_first_error"):
                err += f" ({res['load_first_error'][:60]})"
            before = sum(m["pss"] or 0 for m in res.get("memory_before", []))
            w(f"| {SERVER_NAMES[res['server']]} | {res['ok']:,} | {failed} | "
              f"{res.get('still_open', 0):,} | {fmt_rps(ld.get('rps'))} | "
              f"{fmt_ms(ld.get('p99_us'))} | {err} | {memory_cell(res.get('memory'))} "
              f"(total PSS {fmt_mib(before)} → "
              f"{fmt_mib(sum(m['pss'] or 0 for m in res.get('memory', [])))}) |")
    msgs = collections.OrderedDict()
    for r in bench.results:
        for m, n in (r.get("nginx_messages") or {}).items():
            key = (r["server"], m)
            msgs.setdefault(key, [0, set()])
            msgs[key][0] += n
            msgs[key][1].add(r["workload"])
    if msgs:
        w("")
        w("### What nginx logged about the backends")
        w("")
        w("| server | message | lines | workloads |")
        w("|---|---|---:|---|")
        for (s, m), (n, wls) in msgs.items():
            w(f"| {SERVER_NAMES[s]} | `{m[:160]}` | {n} | {', '.join(sorted(wls))} |")
    if bench.failures:
        w("")
        w("## Failures")
        w("")
        for f in bench.failures:
            w(f"- {f}")
    # Commands.
    w("")
    w("## Servers and commands")
    w("")
    w(server_notes())
    w("Commands as run (`$VENV` is `benches/.venv-peers`, `$TMP` the run's temporary "
      "directory; ports are picked free for every start):")
    w("")
    w("```sh")
    seen = set()
    for key, cmd in bench.commands.items():
        if key == "nginx":
            continue
        if key == "floor":
            w(f"# {SERVER_NAMES['floor']}, hello's answer to every request")
            w(cmd)
            continue
        server, app_key, layout = key[:3]
        what = app_key + (" over a Unix socket" if len(key) > 3 else "")
        if (server, what) in seen:
            continue
        seen.add((server, what))
        w(f"# {SERVER_NAMES[server]}, {what} (shown for {layout_label(layout)})")
        w(cmd)
    w("```")
    w("")
    w("Load commands (per workload, through nginx; `post.lua` sets `wrk.method = \"POST\"` "
      f"and a {POST_BYTES}-byte body):")
    w("")
    w("```sh")
    seenw = set()
    for r in bench.results:
        if r.get("command") and (r["workload"], r["client"]) not in seenw:
            seenw.add((r["workload"], r["client"]))
            w(r["command"])
    w("```")
    w("")
    w("nginx configuration (FastCGI backends; for gunicorn and Granian the location has "
      "`proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host "
      "$host; proxy_pass http://backend;` instead; the ceiling has `return 200`). "
      "`fastcgi_params` is Debian's with `SCRIPT_NAME \"\"` and `PATH_INFO $uri`, the split "
      "an application mounted at the root needs:")
    w("")
    w("```nginx")
    w(re.sub(r"/tmp/wsgid-compare\.[^/ ]+/[^/ ;]+", "$TMP",
             nginx_conf(os.path.join(bench.work, "nginx"), 8080, 9000, "fastcgi")).rstrip())
    w("```")
    w("")
    w("Backend CPU: utime + stime from `/proc/PID/stat` of the server's process and all "
      "its descendants, read just before and after the measured run, divided by the "
      "requests wrk or fcgi_load counted. nginx's and the client's CPU are not included.")
    w("")
    w("Re-run: `benches/compare.sh` (environment: `REPS`, `DURATION`, `WARMUP`, `SERVERS`, "
      "`IDLE_CONNS`); `benches/compare.sh --smoke` for a quick check. Raw figures of the "
      "last run: `benches/results/compare.json`.")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return summary, v


SECTION = "## Comparison with peer servers"


def update_benchmarks_md(bench, summary, report_path, chart_path):
    """Replaces (or appends) the comparison section at the end of BENCHMARKS.md."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = "# wsgid benchmarks\n"
    i = text.find(SECTION)
    if i >= 0:
        text = text[:i]
    text = text.rstrip("\n") + "\n\n"
    rel = lambda p: os.path.relpath(p, ROOT)  # noqa: E731
    servers, reps, duration = bench.servers, bench.reps, bench.duration
    lines = [SECTION, "",
             f"`benches/compare.sh` runs the same application on wsgid, uWSGI, flup, "
             f"gunicorn and Granian behind the same nginx ({reps} interleaved repetitions "
             f"of {duration} s, medians). Hello world through nginx (wrk -c32), req/s "
             f"(min–max), p99 ms:", "",
             "| server | 1 × 1 | 2 × 1 |", "|---|---:|---:|"]
    for s in ["nginx"] + servers:
        cells = []
        for lay in ("1x1", "2x1"):
            if s == "nginx" and lay != "1x1":
                cells.append("(no backend)")
                continue
            r = summary.get(("hello", "-" if s == "nginx" else lay, s, "wrk"))
            cells.append("-" if not r else f"{fmt_rps(r['rps'])} ({fmt_rps(r['rps_min'])}–"
                         f"{fmt_rps(r['rps_max'])}), p99 {fmt_ms(r['p99_us'])}")
        w = SERVER_NAMES[s]
        lines.append(f"| {w} | {cells[0]} | {cells[1]} |")
    if bench.large:
        lines += ["", f"{bench.large_mib:,} MiB up and down through nginx, one request each "
                  "(1 × 1): MiB/s, and the peak RSS growth of the server's processes:", "",
                  "| server | upload | download |", "|---|---:|---:|"]
        for res in bench.large:
            cells = []
            for d in ("upload", "download"):
                r = res.get(d) or {"error": res.get("error", "-")}
                if "error" in r:
                    cells.append("failed")
                elif res["server"] == "nginx-static":
                    cells.append(f"{r['mib_per_s']:,.0f} MiB/s")
                else:
                    cells.append(f"{r['mib_per_s']:,.0f} MiB/s, +{fmt_mib(r['hwm_growth_kib'])} "
                                 "MiB")
            lines.append(f"| {SERVER_NAMES[res['server']]} | {cells[0]} | {cells[1]} |")
    started = []
    for s in servers:
        mem = bench.started_memory.get((s, "1x1"))
        if mem:
            started.append(f"{SERVER_NAMES[s]} {memory_cell(mem)}")
    if started:
        lines += ["", "RSS/PSS in MiB right after start (hello, 1 × 1, first answer): "
                  + "; ".join(started) + "."]
    lines += ["", f"![Hello world requests/s through nginx]({rel(chart_path)})", "",
              f"All workloads (64 KiB, 1 MiB POST, 100 MiB download, Django, 50 ms sleep at "
              f"256 concurrent, 10,000 idle connections), CPU per request, memory of every "
              f"process, versions and commands: [{rel(report_path)}]({rel(report_path)}).",
              ""]
    with open(path, "w") as f:
        f.write(text + "\n".join(lines))


# ---------------------------------------------------------------- flup launcher


def flup_serve(addr, procs, workdir, target):
    """flup's threaded FastCGI server on a listening socket (TCP with TCP_NODELAY, or
    "unix:PATH" open to all users), as fd 0; with procs > 1, that many forked processes on
    the one socket."""
    path = unix_path(addr)
    if path:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        os.chmod(path, 0o666)
    else:
        host, port = addr.rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, int(port)))
    sock.listen(BACKLOG)
    os.dup2(sock.fileno(), 0)
    sock.close()
    os.chdir(workdir)
    sys.path.insert(0, workdir)

    def serve():
        from flup.server.fcgi import WSGIServer

        module, attr = target.split(":")
        app = getattr(importlib.import_module(module), attr)
        WSGIServer(app, bindAddress=None, multithreaded=True, multiprocess=procs > 1).run()

    if procs == 1:
        serve()
        return
    children = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            try:
                serve()
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for c in children:
            try:
                os.kill(c, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for c in children:
        while True:
            try:
                os.waitpid(c, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


# ---------------------------------------------------------------- main


def migrate_django(bench):
    env = dict(os.environ, **bench.apps["django"].env)
    r = subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"],
                       cwd=DJANGO_DIR, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare.py: Django migrate failed:\n{r.stdout}{r.stderr}")
    db = env["DJANGO_SITE_DB"]
    open(f"{db}.migrated", "w").close()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "flup-serve":
        if len(sys.argv) != 6:
            sys.exit("usage: compare.py flup-serve HOST:PORT PROCESSES WORKDIR MODULE:CALLABLE")
        flup_serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wsgid", required=True)
    ap.add_argument("--fcgi-load", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--chart")
    args = ap.parse_args()
    BINARY_NAMES[args.wsgid] = "target/release/wsgid"
    BINARY_NAMES[args.fcgi_load] = "fcgi_load"
    BINARY_NAMES[args.floor] = "floor"
    results_dir = os.path.join(ROOT, "benches", "results")
    os.makedirs(results_dir, exist_ok=True)
    if args.smoke:
        out = args.out or os.path.join(results_dir, "COMPARISON-smoke.md")
        chart_path = args.chart or os.path.join(results_dir, "comparison-smoke.png")
    else:
        out = args.out or os.path.join(ROOT, "benches", "COMPARISON.md")
        chart_path = args.chart or os.path.join(ROOT, "benches", "comparison.png")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    bench = Bench(args)
    if not shutil.which(bench.wrk_bin) or not os.path.exists(bench.nginx_bin):
        sys.exit("compare.py: needs wrk and nginx (apt-get install wrk nginx-light)")
    need = bench.idle_conns + 200
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        log(f"the open-file limit is {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}: "
            f"only {resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200} idle connections")
        bench.idle_conns = max(100, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200)
    bench.load_before = os.getloadavg()[0]
    t0 = time.time()
    interrupted = False
    try:
        migrate_django(bench)
        bench.run()
    except KeyboardInterrupt:
        interrupted = True
        bench.idle = getattr(bench, "idle", [])
        bench.fail("interrupted")
    bench.load_after = os.getloadavg()[0]
    total = time.time() - t0
    with open(os.path.join(results_dir, "compare.json" if not args.smoke else
                           "compare-smoke.json"), "w") as f:
        json.dump({"results": bench.results, "idle": bench.idle, "large": bench.large,
                   "started_memory": {f"{s} {lay}": m for (s, lay), m
                                      in bench.started_memory.items()},
                   "failures": bench.failures}, f, indent=1, default=str)
    ok_chart = False
    try:
        ok_chart = chart(grouped(bench.results), bench.servers, chart_path, bench.smoke)
    except Exception as e:  # the report matters more than the picture
        bench.fail(f"chart: {e}")
    summary, _ = write_report(bench, out, chart_path if ok_chart else None, total)
    log(f"wrote {out}" + (f" and {chart_path}" if ok_chart else ""))
    if not args.smoke and not interrupted and not args.out:
        update_benchmarks_md(bench, summary, out, chart_path)
        log("updated the comparison section of BENCHMARKS.md")
    shutil.rmtree(bench.work, ignore_errors=True)
    log(f"took {total / 60:.1f} minutes")
    if bench.failures:
        log(f"{len(bench.failures)} failure(s):")
        for f in bench.failures:
            log(f"   {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
