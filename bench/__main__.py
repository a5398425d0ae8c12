"""`make bench`: every benchmark, each printing its figures and its ratio to its baseline."""

from __future__ import annotations

import sys

from bench import analytics, posts, reviews, scheduler, soak, webhooks

BENCHMARKS = {
    "analytics": analytics.main,
    "posts": posts.main,
    "reviews": reviews.main,
    "scheduler": scheduler.main,
    "soak": soak.main,
    "soak-pgbouncer": soak.through_pgbouncer_main,
    "takeover": scheduler.takeover,
    "webhooks": webhooks.main,
}


ONLY_ASKED = {"takeover", "soak-pgbouncer"}
"""Run by name only: the takeover is part of the scheduler's, the soak through PgBouncer
repeats the soak."""


def main() -> None:
    """`make bench` runs them all (the scheduler's includes the takeover); `python -m bench
    scheduler` runs one, `python -m bench takeover` only the takeover."""
    chosen = sys.argv[1:] or [name for name in BENCHMARKS if name not in ONLY_ASKED]
    for name in chosen:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()
