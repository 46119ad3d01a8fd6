"""The test identity provider (tests/idp: node oidc-provider) for scripts that run Gatehouse.

    sys.path.insert(0, "scripts/lib"); import idp

    idp.ensure_packages()                       # npm ci --prefix tests/idp, when needed
    port = idp.free_port()                      # Gatehouse's port, to register its callback
    with idp.TestIdp([f"http://127.0.0.1:{port}/auth/callback"]) as provider:
        env = provider.gatehouse_env()          # GATEHOUSE_OIDC_ISSUER, client id and secret
        ...start Gatehouse with GATEHOUSE_PUBLIC_URL=http://127.0.0.1:{port} and env...
        cookie = idp.sign_in(f"http://127.0.0.1:{port}", provider, "alice")
        token = provider.machine_token()         # gatehouse-machine, scope directory.read

Clients, users and the flows are described in tests/idp/README.md. The provider runs on
127.0.0.1 with the issuer `http://localhost:PORT`, so it and a Gatehouse on 127.0.0.1 are
different sites, as in the Rust tests. Standard library only.
"""

import base64
import html
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IDP_DIR = os.path.join(ROOT, "tests", "idp")

WEB_CLIENT = ("gatehouse-web", "gatehouse-web-secret")
MACHINE_CLIENT = ("gatehouse-machine", "gatehouse-machine-secret")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_packages():
    """Installs the provider's npm packages from its lockfile, as scripts/test does: only when
    tests/idp/node_modules is missing or older than the lockfile."""
    modules = os.path.join(IDP_DIR, "node_modules")
    marker = os.path.join(modules, ".package-lock.json")
    lock = os.path.join(IDP_DIR, "package-lock.json")
    if os.path.isfile(marker) and os.path.getmtime(marker) > os.path.getmtime(lock):
        return
    if shutil.which("npm") is None:
        print("==> installing Node.js and npm", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "nodejs", "npm"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    print("==> installing the test identity provider's npm packages", flush=True)
    subprocess.run(["npm", "ci", "--prefix", IDP_DIR, "--no-audit", "--no-fund", "--loglevel=error"],
                   check=True)


class TestIdp:
    """`node tests/idp/server.js` on a free port (it picks one itself with --port 0).

    It exits when its stdin reaches end-of-file, so it is handed a pipe that this object
    holds: if the script dies, the provider goes too. Its stderr (the Node version warning,
    notices) goes to a temporary file, shown when it fails to start."""

    def __init__(self, redirect_uris, post_logout_redirect_uris=(), host="127.0.0.1",
                 issuer_host="localhost", timeout=30):
        cmd = ["node", os.path.join(IDP_DIR, "server.js"), "--host", host,
               "--issuer-host", issuer_host, "--port", "0"]
        for uri in redirect_uris:
            cmd += ["--redirect-uri", uri]
        for uri in post_logout_redirect_uris:
            cmd += ["--post-logout-redirect-uri", uri]
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        try:
            ready = self._ready_line(timeout)
        except Exception:
            self.stop()
            raise
        self.issuer = ready["issuer"]
        self.port = ready["port"]
        self._discovery = None

    def _ready_line(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the test identity provider printed no ready line within "
                                   f"{timeout}s\n{self.stderr_text()}")
            readable, _, _ = select.select([self.proc.stdout], [], [], left)
            if readable:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the test identity provider exited (code "
                                       f"{self.proc.wait()}) before it was ready\n{self.stderr_text()}")
                ready = json.loads(line)
                if not ready.get("ready"):
                    raise RuntimeError(f"unexpected first line from the provider: {line!r}")
                return ready

    def stderr_text(self, last=4000):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-last:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()
        self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def gatehouse_env(self):
        """Gatehouse's sign-in settings for this provider (GATEHOUSE_PUBLIC_URL + /auth/callback
        must be one of the redirect URIs it was started with; the session key is the caller's)."""
        return {
            "GATEHOUSE_OIDC_ISSUER": self.issuer,
            "GATEHOUSE_OIDC_CLIENT_ID": WEB_CLIENT[0],
            "GATEHOUSE_OIDC_CLIENT_SECRET": WEB_CLIENT[1],
        }

    def discovery(self):
        if self._discovery is None:
            status, _, body = request(f"{self.issuer}/.well-known/openid-configuration")
            if status != 200:
                raise RuntimeError(f"provider discovery answered {status}")
            self._discovery = json.loads(body)
        return self._discovery

    def machine_token(self, scope="directory.read", client=MACHINE_CLIENT):
        """A client-credentials access token (an RS256 JWT with aud api://default)."""
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
        auth = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
        status, _, out = request(self.discovery()["token_endpoint"], body,
                                 {"Authorization": f"Basic {auth}",
                                  "Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise RuntimeError(f"client credentials for {client[0]} answered {status}: {out[:500]!r}")
        return json.loads(out)["access_token"]


# Plain HTTP without following redirects (every hop is checked) and without any proxy from
# the environment (everything here is on loopback).
_opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}),
    type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
         {"redirect_request": lambda self, *a, **k: None})(),
)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __iter__(self):
        return iter((self.status, self.headers, self.body))


def request(url, data=None, headers=None, timeout=30):
    """(status, headers, body); 3xx and errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        r = _opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        r = e
    with r:
        return Response(r.status, r.headers, r.read())


class Jar:
    """The cookies of one origin by name, as a browser keeps them (paths are not told apart:
    every cookie goes back, as the Rust tests' Jar does)."""

    def __init__(self):
        self.cookies = {}

    def take(self, response):
        for text in response.headers.get_all("set-cookie") or []:
            name, sep, value = text.split(";", 1)[0].partition("=")
            if not sep:
                continue
            if not value or "max-age=0" in text.lower():
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value

    def header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


def _location(response, current):
    loc = response.headers.get("location")
    if response.status not in (301, 302, 303, 307, 308) or not loc:
        raise RuntimeError(f"expected a redirect from {current}, got {response.status}: "
                           f"{response.body[:500]!r}")
    return urllib.parse.urljoin(current, loc)


def sign_in(base, provider, login="alice", next_path="/profile", password="any"):
    """Signs `login` in as a browser would, without one: Gatehouse's /auth/login, the
    provider's login form, its redirect to /auth/callback (answered 200 with a same-origin
    hop page, because the session cookie is SameSite=Strict), then the hop itself, which must
    answer 200 signed in. Returns the Cookie header value for Gatehouse's session cookie."""
    base = base.rstrip("/")
    app = Jar()
    url = f"{base}/auth/login?next={urllib.parse.quote(next_path, safe='/')}"
    r = request(url)
    app.take(r)
    url = _location(r, url)
    if not url.startswith(provider.issuer + "/"):
        raise RuntimeError(f"/auth/login sent us to {url}, not to {provider.issuer}")
    at_idp = Jar()
    posted = False
    for _ in range(8):
        if url.startswith(base + "/"):
            break
        if "/interaction/" in url and not posted:
            # The login form (GET, as a browser shows it), then its POST: any password.
            page = request(url, headers={"Cookie": at_idp.header()})
            at_idp.take(page)
            if page.status != 200 or b'name="login"' not in page.body:
                raise RuntimeError(f"no login form at {url}: {page.status}")
            form = urllib.parse.urlencode({"prompt": "login", "login": login, "password": password})
            r = request(url, form.encode(), {"Cookie": at_idp.header(),
                                             "Content-Type": "application/x-www-form-urlencoded"})
            posted = True
            if r.status == 303 and _location(r, url) == url:
                raise RuntimeError(f"the provider refused the login {login!r} (its users: alice, bob)")
        else:
            r = request(url, headers={"Cookie": at_idp.header()})
        at_idp.take(r)
        url = _location(r, url)
    if not url.startswith(f"{base}/auth/callback?"):
        raise RuntimeError(f"the provider did not send {login!r} back to the callback: {url}")
    r = request(url, headers={"Cookie": app.header()})
    app.take(r)
    if r.status != 200:
        raise RuntimeError(f"/auth/callback answered {r.status}: {r.body[:800]!r}")
    session = {k: v for k, v in app.cookies.items() if k.endswith("gatehouse_session")}
    if not session:
        raise RuntimeError(f"/auth/callback set no session cookie: {r.headers.get_all('set-cookie')}")
    cookie = "; ".join(f"{k}={v}" for k, v in session.items())
    hop = re.search(rb'http-equiv="refresh" content="0;url=([^"]*)"', r.body)
    if not hop:
        raise RuntimeError(f"/auth/callback answered no hop page: {r.body[:800]!r}")
    target = urllib.parse.urljoin(url, html.unescape(hop.group(1).decode()))
    page = request(target, headers={"Cookie": cookie})
    if page.status != 200:
        raise RuntimeError(f"signed in, but {target} answered {page.status}")
    return cookie
