"""Benchmark: token exchanges per second the emulator serves (it must not be a sweep's bottleneck).

    .venv/bin/python bench/emulator_throughput.py [--threads 8] [--seconds 5]

The emulator runs as its own process (`python -m emulator`), as in the demo; each client thread keeps one HTTPS
connection and posts client-credentials exchanges for the demo's consented tenant with the same managed-identity
assertion, as a worker does. Prints exchanges/s and the emulator's call counts.
"""
import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sweep import proc_stat  # noqa: E402
from emulator import world as demo  # noqa: E402
from emulator.control import Control  # noqa: E402

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp())
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    process = subprocess.Popen([sys.executable, "-m", "emulator", "--state-dir", str(state), "--port", str(ports[0]),
                                "--imds-port", str(ports[1])], stdout=subprocess.DEVNULL)
    try:
        while not (state / "emulator.json").exists():
            time.sleep(0.1)
        run(json.loads((state / "emulator.json").read_text()), args, process.pid)
    finally:
        process.terminate()


def run(info, args, pid: int):
    class emu:  # noqa: N801 - a namespace
        base_url, imds_url, ca_path = info["base_url"], info["imds_url"], info["ca_path"]

    if True:
        session = requests.Session()
        session.trust_env = False
        mi = session.get(f"{emu.imds_url}/metadata/identity/oauth2/token", headers={"Metadata": "true"},
                         params={"api-version": "2018-02-01", "resource": "api://AzureADTokenExchange",
                                 "client_id": demo.MI_CLIENT_ID}).json()["access_token"]
        form = {"client_id": demo.APP_ID, "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": mi, "scope": "https://management.azure.com/.default"}
        done, failed = [0] * args.threads, [0] * args.threads
        stop = time.perf_counter() + args.seconds

        def client(i):
            http = requests.Session()
            http.trust_env, http.verify = False, emu.ca_path
            while time.perf_counter() < stop:
                ok = http.post(f"{emu.base_url}/{demo.FABRIKAM}/oauth2/v2.0/token", data=form).status_code == 200
                done[i] += ok
                failed[i] += not ok

        started, cpu_before = time.perf_counter(), proc_stat(pid)[2]
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        print(f"{sum(done)} token exchanges in {wall:.1f} s with {args.threads} client threads = "
              f"{sum(done) / wall:.0f} exchanges/s ({sum(failed)} failed); the emulator used "
              f"{1000 * (proc_stat(pid)[2] - cpu_before) / max(sum(done), 1):.2f} ms CPU per exchange")
        print(f"emulator call counts: {Control(emu.base_url, emu.ca_path).requests()['by_endpoint']}")


if __name__ == "__main__":
    main()
