"""A release Gatehouse on PostgreSQL + Redis for the benchmark scripts, and `wrk` runs.

    sys.path.insert(0, "scripts/lib"); import idp, server

    s = server.Server(binary, "label", idp.free_port())
    with idp.TestIdp([f"{s.base}/auth/callback"]) as provider:
        s.start(provider)                         # a fresh database, its own Redis prefix
        server.psql(s.database_url, "INSERT ...")  # load data
        cookie = idp.sign_in(s.base, provider, "alice")
        print(server.wrk(s.base + "/health", 8))
        s.stop()                                   # and the database is dropped

Dev mode is not an option for these runs: it refuses to serve on PostgreSQL, so every run
signs in through the test identity provider (tests/idp). Limits are raised so nothing is
refused, but every request is still counted in Redis, as in production. Standard library only.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import idp

PG = os.environ.get("GATEHOUSE_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GATEHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# psql without its NOTICE lines ("database ... does not exist, skipping").
PSQL_ENV = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")


def psql(url, sql):
    """Runs `sql` on `url`, stopping at the first error."""
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, env=PSQL_ENV,
                   stdout=subprocess.DEVNULL)


class Server:
    """One gatehouse binary on its own port, database and Redis prefix."""

    def __init__(self, binary, label, port, extra_env=None):
        self.binary, self.label, self.port = binary, label, port
        self.base = f"http://127.0.0.1:{port}"
        self.db = f"gatehouse_bench_{label}_{os.getpid()}"
        # The same server and options (`?sslmode=...`), another database.
        base, _, options = PG.partition("?")
        self.database_url = base.rsplit("/", 1)[0] + "/" + self.db + ("?" + options if options else "")
        self.extra_env = extra_env or {}
        self.proc = None
        self.cwd = tempfile.mkdtemp(prefix=f"bench-{label}-")
        self.log = os.path.join(self.cwd, "gatehouse.log")
        self.cookie = self.token = None

    def env(self, provider):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        env.update(provider.gatehouse_env())
        env.update({
            "GATEHOUSE_BIND": f"127.0.0.1:{self.port}",
            "GATEHOUSE_PUBLIC_URL": self.base,
            "GATEHOUSE_SESSION_KEY": secrets.token_hex(32),
            "GATEHOUSE_API_CLIENT_IDS": idp.MACHINE_CLIENT[0],
            "GATEHOUSE_DATABASE_URL": self.database_url,
            "GATEHOUSE_REDIS_URL": REDIS,
            "GATEHOUSE_REDIS_PREFIX": f"bench-{self.label}-{os.getpid()}",
            "GATEHOUSE_RATE_LIMITS": "default=100000000/minute,gh.search_json=100000000/minute,"
                                     "api=100000000/minute,auth.login=1000/minute,auth.callback=1000/minute",
            "RUST_LOG": "warn",
            "GATEHOUSE_LOG_FORMAT": "json",
        })
        env.update(self.extra_env)
        return env

    def create_database(self):
        psql(PG, f"DROP DATABASE IF EXISTS {self.db}")
        psql(PG, f"CREATE DATABASE {self.db}")

    def migrate(self, provider):
        """Creates the schema without serving (to load data before the first start)."""
        self.create_database()
        subprocess.run([self.binary, "migrate"], env=self.env(provider), cwd=self.cwd, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self, provider, fresh=True):
        if fresh:
            self.create_database()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([self.binary], env=self.env(provider), cwd=self.cwd,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.label}: {self.binary} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if idp.request(f"{self.base}/health", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit(f"{self.label}: no 200 from /health within 60 s:\n{self.log_tail()}")

    def log_tail(self, last=4000):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")[-last:]

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
        subprocess.run(["psql", PG, "-qc", f"DROP DATABASE IF EXISTS {self.db}"], env=PSQL_ENV)
        shutil.rmtree(self.cwd, ignore_errors=True)


def memory(pid):
    """The process's resident memory now and at its peak, as text ("RSS 21.3 MB, peak 24.0 MB")."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return f"RSS {fields.get('VmRSS', 0):.1f} MB, peak {fields.get('VmHWM', 0):.1f} MB"


def cpu_seconds(names=None):
    """CPU time (user + system) used so far by the processes whose command is in `names`, or
    by the whole machine when `names` is None (processes that exit take their time with them,
    so PostgreSQL's share is best read as the machine's less Gatehouse's and wrk's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    if names is None:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        # user nice system (idle iowait excluded) irq softirq steal
        return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7)) / ticks
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name in names:
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def wrk(url, seconds, header=None):
    """`wrk -t2 -c32` for `seconds`: (req/s, p50, p99, non-2xx/3xx count)."""
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0


def measure(name, url, seconds, header=None, width=44):
    """One wrk run, as a line: req/s, p50, p99, non-2xx, and the CPU time per request of
    Gatehouse and of the rest of the machine but wrk (PostgreSQL, Redis, the kernel)."""
    # The kernel keeps a command's first 15 characters: a binary copied under another name
    # (GATEHOUSE_BIN=/tmp/gatehouse-old) is found by that name.
    names = {"gatehouse", os.path.basename(os.environ.get("GATEHOUSE_BIN", "gatehouse"))[:15]}
    before = (cpu_seconds(names), cpu_seconds({"wrk"}), cpu_seconds())
    rps, p50, p99, bad = wrk(url, seconds, header)
    app = cpu_seconds(names) - before[0]
    load = cpu_seconds({"wrk"}) - before[1]
    rest = cpu_seconds() - before[2] - app - load
    n = max(rps * seconds, 1)
    return (f"{name:{width}} {rps:9.0f} {p50:>9} {p99:>9} {bad:8d}"
            f" {app / n * 1e6:11.0f} {rest / n * 1e6:11.0f}")
