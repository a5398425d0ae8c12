"""Benchmarks (`make bench`). None exist yet; each one will print its figures and its
ratio against a baseline measured in the same run."""

from __future__ import annotations


def main() -> None:
    print("No benchmarks yet.")


if __name__ == "__main__":
    main()
