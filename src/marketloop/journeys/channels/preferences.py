"""The learned channel preference (渠道偏好): which channel a customer responds on.

A simple per-customer statistic for now: opens and clicks over touches
accepted, per channel, with a Laplace prior so one lucky open does not beat
a long record. A customer who opened on WeChat gets WeChat next time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from marketloop.core.consent import Channel as ChannelKind


def engagement_rate(sent: int, engaged: int) -> float:
    return (engaged + 1) / (sent + 2)


def best_channel(
    engagement: Mapping[ChannelKind, tuple[int, int]], candidates: Sequence[tuple[str, ChannelKind]]
) -> str:
    """The candidate (name, kind) with the highest engagement rate; ties go to the earlier candidate."""
    if not candidates:
        raise ValueError("no candidate channel")
    scored = [(-engagement_rate(*engagement.get(kind, (0, 0))), i, name) for i, (name, kind) in enumerate(candidates)]
    return min(scored)[2]
