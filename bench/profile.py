"""Where Gatehouse's time goes: py-spy on the server while wrk loads /mcp.

    .venv/bin/python bench/profile.py --generation 2026-07-28 --out gh.txt [--serve-args ...]

Gatehouse runs without its access log (`--no-access-log`), as `run.py --report` measures it;
`--serve-args ""` keeps the log.

Writes py-spy's raw collapsed stacks (`--format raw`) and prints the top frames by own time and
by inclusive time. Needs `pip install py-spy` and ptrace permission.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODERN, routing_headers, tools_call_body  # noqa: E402
from run import LUA, PYTHON, ROOT, Server, get_token, wrk  # noqa: E402


def summarize(collapsed: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples")
    print("\n-- own time --")
    for frame, n in own.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("\n-- inclusive time --")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generation", default=MODERN)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve-args", default="--no-access-log", help="as run.py --report")
    parser.add_argument("--out", type=Path, default=Path("gatehouse-profile.txt"))
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gatehouse-profile-"))
    base = "http://127.0.0.1:8101"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOST": "127.0.0.1",
        "PORT": "8101",
        "PUBLIC_URL": base,
        "VAR_DIR": str(work / "var"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{work}/gatehouse.db",
    }
    subprocess.run([PYTHON, "-m", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    argv = [PYTHON, "-m", "app", "serve", *args.serve_args.split()]
    server = Server("gatehouse", argv, 8101, env, work / "gatehouse.log")
    try:
        token = get_token(base, f"{base}/mcp")
        body = json.dumps(tools_call_body(args.generation), separators=(",", ":"))
        routing = "".join(
            f'wrk.headers["{k}"] = "{v}"\n' for k, v in routing_headers(args.generation).items()
        )
        script = work / "load.lua"
        script.write_text(
            LUA % {"body": body, "token": token, "version": args.generation, "routing": routing}
        )
        wrk(8101, script, 2, args.connections)
        spy = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "py-spy"),
                "record",
                "--pid",
                str(server.proc.pid),
                "--rate",
                "250",
                "--duration",
                str(args.seconds),
                "--format",
                "raw",
                "--output",
                str(args.out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(wrk(8101, script, args.seconds, args.connections))
        spy.wait(args.seconds + 30)
    finally:
        server.stop()
    summarize(args.out, args.top)


if __name__ == "__main__":
    main()
