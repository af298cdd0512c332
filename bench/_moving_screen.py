"""A robot whose screen never stands still: a Tk window over the whole display repaints a counter and a moving bar
every 40 ms, so every screenshot is a new frame (an ETag never matches; the full view's frame rate is the real one).
"""

from __future__ import annotations

import signal
import sys
import tkinter


def main() -> None:
    root = tkinter.Tk()
    width, height = root.winfo_screenwidth(), root.winfo_screenheight()
    root.geometry(f"{width}x{height}+0+0")
    canvas = tkinter.Canvas(root, width=width, height=height, background="#1f3b6f", highlightthickness=0)
    canvas.pack()
    bar = canvas.create_rectangle(0, height // 2 - 40, 160, height // 2 + 40, fill="#f2c94c", width=0)
    label = canvas.create_text(width // 2, height // 4, text="0", fill="white", font=("Helvetica", 64))
    frame = [0]

    def tick() -> None:
        frame[0] += 1
        left = (frame[0] * 16) % max(1, width - 160)
        canvas.coords(bar, left, height // 2 - 40, left + 160, height // 2 + 40)
        canvas.itemconfigure(label, text=str(frame[0]))
        root.after(40, tick)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    root.after(40, tick)
    root.mainloop()


if __name__ == "__main__":
    main()
