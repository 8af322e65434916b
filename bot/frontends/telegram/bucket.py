"""A leaky bucket, the shape of each of Telegram's flood limits (``outbound``): so many
requests at once, then so many a second."""

from __future__ import annotations


class Bucket:
    """A leaky bucket: ``burst`` requests at once, refilled at ``rate`` a second."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.level, self.at = 0.0, 0.0
        self.resting_until = 0.0  # Telegram asked us to wait (a 429)

    def wait(self, now: float, spare: float = 0) -> float:
        """Seconds until one more request fits, leaving ``spare`` unused (0: now)."""
        self._leak(now)
        over = self.level + 1 + spare - self.burst
        return max(self.resting_until - now, over / self.rate if over > 0 else 0.0)

    def take(self, now: float) -> None:
        """One request goes ``now`` (what leaked before it is counted first)."""
        self._leak(now)
        self.level += 1

    def _leak(self, now: float) -> None:
        self.level = max(0.0, self.level - (now - self.at) * self.rate)
        self.at = now

    @property
    def idle(self) -> bool:
        return self.level == 0 and self.resting_until <= self.at
