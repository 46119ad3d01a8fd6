"""A fake GitHub for the benchmark scripts: the organization's SAML identities over GraphQL
(paginated like the real API) and an empty repository list, enough for `gatehouse sync
github` to load a directory of any size. The Rust tests have a fuller fake
(tests/it/support/fake_github.rs: traffic, renames, errors, rate limits); this one only
serves data. Standard library only.

    gh = FakeGitHub("acme", people(5000))   # starts on a free loopback port
    env = gh.gatehouse_env()                  # GATEHOUSE_GITHUB_ORG, _TOKEN, _API_URL
    gh.stop()
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "bench-github-token"
SURNAMES = ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson")
FIRST = ("Ada", "Bo", "Cecilia", "David", "Elin", "Filip", "Greta", "Hugo", "Ines", "Jonas")


def people(n):
    """`n` identities (email, login, name). Every surname has "son" in it, a fifth of them are
    Karlssons ("kar"), and each login (`gh-00042`) names one person."""
    out = []
    for i in range(n):
        first, last = FIRST[i % len(FIRST)], SURNAMES[(i // len(FIRST)) % len(SURNAMES)]
        out.append((f"{first.lower()}.{last.lower()}.{i}@example.com", f"gh-{i:05d}", f"{first} {last}"))
    return out


class FakeGitHub:
    def __init__(self, org, identities):
        self.org, self.identities = org, identities
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("x-ratelimit-limit", "5000")
                self.send_header("x-ratelimit-remaining", "4999")
                self.end_headers()
                self.wfile.write(data)

            def authorized(self):
                if self.headers.get("authorization") == f"Bearer {TOKEN}":
                    return True
                self.answer(401, {"message": "Bad credentials"})
                return False

            def do_POST(self):
                if not self.authorized():
                    return
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/graphql" or "externalIdentities" not in body.get("query", ""):
                    self.answer(404, {"message": "Not Found"})
                    return
                variables = body.get("variables") or {}
                after = variables.get("after")
                start = int(base64.b64decode(after).decode().split(":")[-1]) + 1 if after else 0
                first = min(int(variables.get("first") or 100), 100)
                end = min(start + first, len(fake.identities))
                nodes = [{"samlIdentity": {"nameId": email, "username": email},
                          "user": {"login": login, "name": name}}
                         for email, login, name in fake.identities[start:end]]
                cursor = base64.b64encode(f"cursor:v2:{end - 1}".encode()).decode() if end > start else None
                self.answer(200, {"data": {"organization": {"samlIdentityProvider": {"externalIdentities": {
                    "pageInfo": {"hasNextPage": end < len(fake.identities), "endCursor": cursor},
                    "nodes": nodes}}}}})

            def do_GET(self):
                if not self.authorized():
                    return
                if self.path.split("?")[0] == f"/orgs/{fake.org}/repos":
                    self.answer(200, [])
                elif self.path == f"/orgs/{fake.org}":
                    self.answer(200, {"login": fake.org})
                else:
                    self.answer(404, {"message": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def gatehouse_env(self):
        return {"GATEHOUSE_GITHUB_ORG": self.org, "GATEHOUSE_GITHUB_TOKEN": TOKEN,
                "GATEHOUSE_GITHUB_API_URL": self.base}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
