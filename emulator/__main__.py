"""python -m emulator: serve the demo world (or --world FILE) until interrupted."""
import argparse
import signal
import threading
from pathlib import Path

from emulator.server import Emulator
from emulator.world import demo_world, load_world


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--world", help="a world file (JSON or TOML); default: the built-in demo world")
    parser.add_argument("--state-dir", default="var/emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443, help="HTTPS: login, Graph, ARM, control (0: any free)")
    parser.add_argument("--imds-port", type=int, default=8444, help="plain HTTP: IMDS (0: any free)")
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every call but control")
    parser.add_argument("--jitter-ms", type=float, default=0)
    args = parser.parse_args(argv)
    world = load_world(args.world) if args.world else demo_world()
    emulator = Emulator(world, Path(args.state_dir), host=args.host, port=args.port, imds_port=args.imds_port,
                        latency_ms=args.latency_ms, jitter_ms=args.jitter_ms).start()
    demo = emulator.info["demo"]
    print(f"Entra/Graph/ARM emulator on {emulator.base_url} (CA: {emulator.ca_path})")
    print(f"IMDS on {emulator.imds_url}; state in {args.state_dir}/emulator.json")
    print(f"Managed identity client id {demo['managed_identity']['client_id']}, app {demo['app']['app_id']}, "
          f"home tenant {demo['home_tenant'].get('id')}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    emulator.stop()


if __name__ == "__main__":
    main()
