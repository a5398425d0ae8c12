"""`make bench`: every benchmark, each printing its figures and its ratio to its baseline."""

from __future__ import annotations

from bench import posts


def main() -> None:
    posts.main()


if __name__ == "__main__":
    main()
