"""Demo robot with a process tree: a child, a grandchild, and one grandchild that escapes the process group
with setsid(), as a browser launched by a robot might. Each prints its pid to --pids FILE and sleeps."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

SLEEPER = "import time\nwhile True: time.sleep(0.2)\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pids", required=True)
    parser.add_argument("--role", default="robot")
    args = parser.parse_args()
    with open(args.pids, "a") as file:
        file.write(f"{args.role} {os.getpid()}\n")
    if args.role == "robot":
        subprocess.Popen([sys.executable, __file__, "--pids", args.pids, "--role", "child"])
    elif args.role == "child":
        subprocess.Popen([sys.executable, "-c", SLEEPER])
        escaped = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)
        with open(args.pids, "a") as file:
            file.write(f"escaped {escaped.pid}\n")
    print(f"{args.role} running", flush=True)
    while True:
        time.sleep(0.2)


if __name__ == "__main__":
    main()
