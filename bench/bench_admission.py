"""The admission webhook under load: 200 concurrent AdmissionReviews over TLS.

    python bench/bench_admission.py [--reviews 200] [--models 4] [--source store|oci]

Builds what CI would leave behind (the tiny example gated and attested per model,
`--models` distinct digests), starts `auditor admission serve` as its own process
(TLS from a test CA, policies baseline + production), and posts `--reviews`
InferenceService reviews at once from as many client threads, twice: a cold round
(no verdict cached: the first review of each digest verifies its attestation and
judges the SBOM, the others for that digest wait for that answer) and a warm round
(every verdict cached). Prints p50, p99 and max latency and the round's wall time;
every review must be answered 200 with the expected verdict. `--source oci` keeps
the attestations as referrers in a local Distribution registry (docker-registry)
instead of the air-gapped store. Run by hand; never by pytest.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.admission_fixtures import (  # noqa: E402 (the checkout's tests, by path)
    admission_review,
    cli,
    gate_sbom,
    inference_service,
    keys,
    model_folder,
)
from tests.oci_registry import write_test_ca  # noqa: E402


def build_store(root: Path, models: int) -> tuple[list[str], Path, Path]:
    """`models` attested hf:// references in a store: (refs, store, trusted public key)."""
    k = keys(root / "keys")
    store = root / "store"
    store.mkdir()
    folder = model_folder(root / "tiny", k.private)
    refs = []
    for n in range(models):
        commit = f"{n + 1:x}" * 40
        ref = f"hf://acme/tiny@{commit[:40]}"
        sbom = gate_sbom(folder, root / f"m{n}.cdx.json", "--name", "acme/tiny", "--revision",
                         commit[:40], "--key", k.public)
        assert cli("attest", sbom, "--key", k.private, "--subject", ref,
                   "-o", store / f"m{n}.json") == 0
        refs.append(ref)
    return refs, store, k.public


def build_registry(root: Path, models: int) -> tuple[list[str], Path, object]:
    """`models` modelkits pushed, gated, attested and attached: (refs, trusted key, server)."""
    from tests.builders import write_tiny_model
    from tests.oci_registry import push_modelkit, start

    server = start("plain", root / "registry")
    k = keys(root / "keys")
    folder = write_tiny_model(root / "tiny")
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    refs = []
    for n in range(models):
        files["config.json"] = files["config.json"].rstrip() + b" " * (n + 1)  # another digest
        digest = push_modelkit(server.client(), f"models/tiny{n}", "v1", files).digest
        ref = server.ref(f"models/tiny{n}", digest)
        sbom = gate_sbom(ref, root / f"m{n}.cdx.json", "--plain-http")
        assert cli("attest", sbom, "--key", k.private, "--subject", ref, "--push",
                   "--plain-http", "-o", root / f"m{n}.json") == 0
        refs.append(ref)
    return refs, k.public, server


def start_webhook(root: Path, args: list[str]) -> tuple[subprocess.Popen, str, Path]:
    ca, cert, key = write_test_ca(root)
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", "admission", "serve", "--host", "127.0.0.1",
         "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
         "--audit-log", str(root / "audit.log"), *args],
        stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stderr.readline() if process.stderr else ""
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"the webhook did not start: {line}")
    return process, line.split("listening on ")[1].strip(), ca


def round_of(url: str, ca: Path, bodies: list[dict], expect: list[bool]) -> tuple[list[float],
                                                                                   float]:
    """Post every body at once (one thread each); latencies (s) and the round's wall time."""
    import ssl

    import httpx

    context = ssl.create_default_context(cafile=str(ca))
    gate = threading.Barrier(len(bodies))

    def one(i: int) -> float:
        with httpx.Client(verify=context, timeout=30) as client:
            gate.wait()
            start = time.perf_counter()
            reply = client.post(url, json=bodies[i])
            took = time.perf_counter() - start
        assert reply.status_code == 200, reply.text
        assert reply.json()["response"]["allowed"] is expect[i], reply.text
        return took

    started = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        latencies = list(pool.map(one, range(len(bodies))))
    return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--source", choices=["store", "oci"], default="store")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = None
        if opts.source == "store":
            refs, store, public = build_store(root, opts.models)
            where = ["--attestations", str(store), "--no-registry"]
        else:
            refs, public, registry = build_registry(root, opts.models)
            where = ["--plain-http"]
        policies = ["--policy", "baseline"] + (["--policy", "production"]
                                               if opts.source == "store" else [])
        process, url, ca = start_webhook(root, [*policies, "--key", str(public), *where])
        try:
            bodies = [admission_review(inference_service(refs[i % len(refs)]))
                      for i in range(opts.reviews)]
            expect = [True] * len(bodies)
            print(f"{opts.reviews} concurrent reviews, {len(refs)} models ({opts.source}), "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
            for name in ("cold", "warm"):
                latencies, wall = round_of(url, ca, bodies, expect)
                ms = sorted(x * 1000 for x in latencies)
                p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
                print(f"  {name}: p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  "
                      f"max {ms[-1]:7.1f} ms  total {wall * 1000:7.1f} ms")
        finally:
            process.terminate()
            process.wait(10)
            if registry is not None:
                registry.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
