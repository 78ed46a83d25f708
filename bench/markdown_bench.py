"""Markdown rendering time of the labeler page (app/web/markdown.py): typical LLM answers and
inputs that are slow for the parser, each at MAX_MARKDOWN characters (the most that is parsed;
longer texts are shown as written). Prints the median of R runs in ms and µs a character.

    .venv/bin/python bench/markdown_bench.py [--runs R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.web.markdown import MAX_HIGHLIGHT, MAX_MARKDOWN, markdown  # noqa: E402

ANSWER = (
    "## Steps\n\n1. Open the **windows** at night.\n2. Close the blinds by day.\n\n"
    "```python\ndef cool(room):\n    return [w.open() for w in room.windows]  # night\n```\n\n"
    "| fan | watts |\n|---|--:|\n| desk | 30 |\n\nSee [the guide](https://example.org).\n\n"
)


def cases() -> dict[str, str]:
    code = "def f(x):\n    return [i for i in x if i]  # keep the truthy ones\n"
    return {
        "typical answer 2k": (ANSWER * 10)[:2000],
        "typical answer at max": (ANSWER * (MAX_MARKDOWN // len(ANSWER) + 1))[:MAX_MARKDOWN],
        "python block at highlight max": "```python\n"
        + (code * (MAX_HIGHLIGHT // len(code) + 1))[: MAX_HIGHLIGHT - 1]
        + "\n```",
        "open brackets at max": ("[" * MAX_MARKDOWN + "](" * MAX_MARKDOWN)[:MAX_MARKDOWN],
        "emphasis runs at max": ("*a " * MAX_MARKDOWN)[:MAX_MARKDOWN],
        "links at max": ("[a](https://x.example) " * MAX_MARKDOWN)[:MAX_MARKDOWN],
        "over max (as written)": "[" * (MAX_MARKDOWN * 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'input':32} {'chars':>8} {'median ms':>10} {'µs/char':>8}")
    for name, text in cases().items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            markdown(text)
            times.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times)
        print(f"{name:32} {len(text):>8} {median:>10.1f} {1000 * median / len(text):>8.2f}")


if __name__ == "__main__":
    main()
