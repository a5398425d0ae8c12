"""`make bench`: every benchmark, each printing its figures and its ratio to its baseline."""

from __future__ import annotations

import sys

from bench import analytics, posts, reviews, scheduler, webhooks

BENCHMARKS = {
    "analytics": analytics.main,
    "posts": posts.main,
    "reviews": reviews.main,
    "scheduler": scheduler.main,
    "webhooks": webhooks.main,
}


def main() -> None:
    """`make bench` runs them all; `python -m bench scheduler` runs one."""
    chosen = sys.argv[1:] or list(BENCHMARKS)
    for name in chosen:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()
