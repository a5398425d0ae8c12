"""Analytics tests run beside the scheduler's: its runtime and worker on the test clock,
publishing to the sandbox."""

from tests.scheduler.conftest import control, platform_timeout, runtime, worker

__all__ = ["control", "platform_timeout", "runtime", "worker"]
