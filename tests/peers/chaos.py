"""Seeded random faults for the loopback chat servers (generic, Slack, Discord): fractions of
requests answered 429, 500, left hanging until the server stops (never applied), or applied and
then the connection dropped before the answer ("lost", where the server offers it)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Chaos:
    """`global_share` of the 429s are Discord's global kind ("429-global"); `methods` limits the
    faults to those calls (None: every call the server offers to fault): Web API methods on
    Slack (`chat.postMessage`), `post`, `edit` or `thread` on Discord."""

    rate_limited: float = 0.0
    server_error: float = 0.0
    hang: float = 0.0
    lost: float = 0.0
    retry_after: float = 0.05
    seed: int = 0
    global_share: float = 0.0
    methods: frozenset[str] | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def applies(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def pick(self) -> str | None:
        """The fault for the next request: "429", "429-global", "500", "hang", "lost", or None."""
        x = self.rng.random()
        if x < self.rate_limited:
            if self.global_share and self.rng.random() < self.global_share:
                return "429-global"
            return "429"
        x -= self.rate_limited
        if x < self.server_error:
            return "500"
        x -= self.server_error
        if x < self.hang:
            return "hang"
        x -= self.hang
        return "lost" if x < self.lost else None
