"""Demo robot with a window: a Tk window filling most of the screen in a known colour (#3366cc), with a text
entry at its top. Each click it receives is appended as a JSON line {"x", "y", "button"} (screen coordinates;
button left, middle or right) to the file named by TK_WINDOW_EVENTS (default ./tk-events.jsonl), and each key
typed into its entry as {"key", "char", "text"} (text: the entry's whole content after that key).

It runs until SIGTERM (exit 0), or with `--fail-after SECONDS` it prints a few lines, writes a traceback and
exits 3 after that long: a failed run with a window, for the evidence tests.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import tkinter as tk
from pathlib import Path
from typing import Any

COLOUR = "#3366cc"
BUTTONS = {1: "left", 2: "middle", 3: "right"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-after", type=float, default=0.0, help="exit 3 with a traceback after SECONDS")
    args = parser.parse_args()
    events = Path(os.environ.get("TK_WINDOW_EVENTS", "tk-events.jsonl"))

    def record(event: dict[str, Any]) -> None:
        with events.open("a") as file:
            file.write(json.dumps(event) + "\n")

    root = tk.Tk()
    root.title("tk_window")
    width, height = root.winfo_screenwidth(), root.winfo_screenheight()
    margin = max(10, min(width, height) // 20)
    root.geometry(f"{width - 2 * margin}x{height - 2 * margin}+{margin}+{margin}")
    root.configure(background=COLOUR)
    entry = tk.Entry(root, font=("TkFixedFont", 14))
    entry.pack(side=tk.TOP, fill=tk.X, padx=8, pady=8)
    tk.Frame(root, background=COLOUR).pack(side=tk.TOP, fill=tk.BOTH, expand=True)

    root.bind_all(
        "<ButtonPress>",
        lambda event: record({"x": event.x_root, "y": event.y_root, "button": BUTTONS.get(event.num, event.num)}),
    )

    def typed(event: tk.Event[tk.Entry]) -> None:
        # The entry takes the key after this binding: its text is read once Tk is idle again.
        root.after_idle(lambda: record({"key": event.keysym, "char": event.char, "text": entry.get()}))

    entry.bind("<KeyPress>", typed)

    stopping = False
    code = 0

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    began = time.monotonic()

    def tick() -> None:
        nonlocal code
        # Tk's loop runs in C: Python's signal handlers only run when it hands back control, every tick.
        if stopping:
            root.destroy()
            return
        if args.fail_after and time.monotonic() - began >= args.fail_after:
            code = fail()
            root.destroy()
            return
        root.after(100, tick)

    def focus() -> None:
        entry.focus_force()  # without a window manager nobody else gives it the keyboard

    root.after(100, tick)
    root.after(200, focus)
    print(f"tk_window: a {COLOUR} window on a {width}x{height} screen; events go to {events}", flush=True)
    root.mainloop()
    if not code:
        print("tk_window: stopped", flush=True)
    return code


def fail() -> int:
    for step in range(3):
        print(f"tk_window: step {step} done", flush=True)
    try:
        raise RuntimeError("the robot gave up on purpose")
    except RuntimeError:
        import traceback

        traceback.print_exc()
    sys.stderr.flush()
    return 3


if __name__ == "__main__":
    sys.exit(main())
