"""Load test of ``t2po serve-retriever``: N concurrent clients on 127.0.0.1 for S seconds.

Starts the server as a subprocess (the generated Search-QA world, ``--world-passages``
passages, tantivy BM25), then runs ``--clients`` client threads that each send ``topk``
requests back to back, one TCP connection per request (as ``RemoteRetriever`` does), and
prints the request count, throughput, connection resets, unanswered requests (timeouts,
other socket errors, non-200 replies) and latency percentiles in milliseconds::

    python benchmarks/retriever_load.py --clients 64 --seconds 30 --passages 20000 --topk 3

Only 127.0.0.1 is used. :func:`run_load` is also used by ``tests/envs/test_searchqa_server.py``
(which asserts on resets and unanswered requests only, never on time).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field

WORDS = ("city river population capital founded mountain war king university museum river island "
         "author novel film director album band election president company football team").split()


@dataclass
class LoadResult:
    """Outcome of :func:`run_load`; latencies in seconds, one per answered request."""

    requests: int = 0
    answered: int = 0
    resets: int = 0
    unanswered: int = 0
    http_errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of answered-request latency, in milliseconds."""
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return 1000.0 * xs[min(len(xs) - 1, int(q * len(xs)))]

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.requests, "answered": self.answered, "resets": self.resets,
            "unanswered": self.unanswered, "http_errors": self.http_errors,
            "req_per_s": self.answered / max(self.seconds, 1e-9),
            "p50_ms": self.percentile(0.50), "p90_ms": self.percentile(0.90),
            "p99_ms": self.percentile(0.99), "max_ms": self.percentile(1.0),
        }


def run_load(host: str, port: int, *, clients: int = 64, seconds: float = 30.0, topk: int = 3,
             timeout: float = 10.0, seed: int = 0, think_s: float = 0.0) -> LoadResult:
    """``clients`` threads send ``/retrieve`` requests for ``seconds`` seconds; returns the counts.

    ``think_s``: pause after each reply (0: back to back, the hardest case; a trainer's env
    worker pauses for a whole LLM generation between searches)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load test only targets this machine (127.0.0.1)")
    result = LoadResult()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        start.wait()
        while time.monotonic() < stop_at:
            query = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
            body = json.dumps({"queries": [query], "topk": topk, "return_scores": True}).encode()
            t0 = time.perf_counter()
            outcome, err = "ok", ""
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("POST", "/retrieve", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    outcome, err = "http", f"HTTP {resp.status}: {data[:100]!r}"
                elif len(json.loads(data)["result"]) != 1:
                    outcome, err = "http", "wrong number of result lists"
            except ConnectionResetError as e:
                outcome, err = "reset", repr(e)
            except (OSError, http.client.HTTPException, ValueError) as e:
                outcome, err = "unanswered", repr(e)
            finally:
                conn.close()
            dt = time.perf_counter() - t0
            with lock:
                result.requests += 1
                if outcome == "ok":
                    result.answered += 1
                    result.latencies.append(dt)
                else:
                    result.resets += outcome == "reset"
                    result.unanswered += outcome != "http"
                    result.http_errors += outcome == "http"
                    if len(result.errors) < 20:
                        result.errors.append(err)
            if think_s > 0:
                time.sleep(think_s)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * timeout + 10)
    result.seconds = time.monotonic() - t0
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(passages: int, port: int, *, env: dict | None = None, timeout: float = 300.0) -> subprocess.Popen:
    """Start ``t2po serve-retriever`` on 127.0.0.1:``port``; return once ``/health`` answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2po_gym.cli", "serve-retriever", "--port", str(port), "--host", "127.0.0.1",
         "--world-passages", str(passages)],
        env=env or dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                json.loads(r.read())
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("server exited: " + proc.stdout.read().decode(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("server did not start in time")
            time.sleep(0.2)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--passages", type=int, default=20_000)
    ap.add_argument("--topk", type=int, default=3)
    ap.add_argument("--think-ms", type=float, default=0.0, help="pause of each client after a reply")
    args = ap.parse_args(argv)
    port = free_port()
    proc = start_server(args.passages, port)
    try:
        cpu0, own0 = _cpu_seconds(proc.pid), time.process_time()
        res = run_load("127.0.0.1", port, clients=args.clients, seconds=args.seconds, topk=args.topk,
                       think_s=args.think_ms / 1000)
        cpu1, own1 = _cpu_seconds(proc.pid), time.process_time()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    n = max(res.answered, 1)
    out = {"clients": args.clients, "seconds": round(res.seconds, 1), "passages": args.passages, "topk": args.topk,
           "think_ms": args.think_ms, **{k: round(v, 2) if isinstance(v, float) else v for k, v in res.summary().items()},
           # CPU per request does not depend on how busy the machine is; latency does
           "server_cpu_ms_per_req": round(1000 * (cpu1 - cpu0) / n, 3),
           "client_cpu_ms_per_req": round(1000 * (own1 - own0) / n, 3),
           "load_avg_1min": os.getloadavg()[0], "cpus": os.cpu_count()}
    print(json.dumps(out))
    for e in res.errors[:5]:
        print("error:", e, file=sys.stderr)
    return 0 if res.resets == 0 and res.unanswered == 0 and res.http_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
