"""Every Redis key aistatus uses, and only here. Pure: builds strings.

Keys are versioned (`aistatus:v1:`) and carry a hash tag so that every Lua script touches one slot
and the bot runs unchanged on Redis Cluster:
  {p:<provider>}  everything one status-page poll touches: its surfaces' states, their histories,
                  the provider's transitions stream and its poll-slot claims (one script per poll);
  {c:<channel>}   one chat channel's subscription, mute and message references;
  {s:<surface>}   the fan-out index and the crowd reports of one surface;
  {o}             the delivery outbox streams (one slot: a consumer group spans one stream).
"""

from __future__ import annotations

PREFIX = "aistatus:v1"


# -- watching (issue 2) ---------------------------------------------------------------------------


def state(provider: str, surface: str) -> str:
    """Hash {v: version, s: SurfaceState JSON}; written only by the commit CAS script, read by
    every poll, `status` and the App Home board."""
    return f"{PREFIX}:{{p:{provider}}}:state:{surface}"


def history(provider: str, surface: str) -> str:
    """List of Transition JSON, newest first, capped; read by `history` and uptime figures."""
    return f"{PREFIX}:{{p:{provider}}}:history:{surface}"


def transitions(provider: str) -> str:
    """Stream of recorded transitions (field `t`: Transition JSON), appended by the commit script
    in the same atomic step; read by the fan-out stage."""
    return f"{PREFIX}:{{p:{provider}}}:transitions"


def slot(provider: str, job: str, slot_index: int) -> str:
    """SET NX PX claim: the replica that sets it runs `job` for this interval slot."""
    return f"{PREFIX}:{{p:{provider}}}:slot:{job}:{slot_index}"


def etag(provider: str) -> str:
    """Hash {etag, last_modified}: validators of the last good summary.json, for conditional GET."""
    return f"{PREFIX}:{{p:{provider}}}:etag"


def surfaces_index() -> str:
    """Hash surface -> provider of every surface ever stored (lets readers find state keys)."""
    return f"{PREFIX}:surfaces"


# -- channels (issue 3) -----------------------------------------------------------------------------


def subscription(channel_key: str) -> str:
    """Hash: one channel's subscription (surfaces, min severity, maintenance, muted_until, ...)."""
    return f"{PREFIX}:{{c:{channel_key}}}:sub"


def message(channel_key: str, outage_id: str) -> str:
    """MessageRef JSON of the parent message of one outage in one channel (threading, edits)."""
    return f"{PREFIX}:{{c:{channel_key}}}:msg:{outage_id}"


def channels_of(surface: str) -> str:
    """Set of channel keys subscribed to `surface` (`*` for 'all Claude surfaces'): the fan-out
    index. A superset is harmless: fan-out re-checks the channel's own subscription."""
    return f"{PREFIX}:{{s:{surface}}}:channels"


def all_channels() -> str:
    """Set of every channel key with a subscription (list/App Home per workspace)."""
    return f"{PREFIX}:channels"


def crowd(surface: str) -> str:
    """Sorted set of crowd reports, member `<workspace>|<user>`, score = report time (epoch s)."""
    return f"{PREFIX}:{{s:{surface}}}:crowd"


def crowd_user(surface: str, workspace: str, user: str) -> str:
    """SET NX EX: one report per user per surface per window."""
    return f"{PREFIX}:{{s:{surface}}}:crowd:u:{workspace}:{user}"


# -- delivery (issues 4-6) ----------------------------------------------------------------------------


def outbox() -> str:
    """Stream of delivery entries, one per (alert, channel); consumer group `workers`."""
    return f"{PREFIX}:{{o}}:outbox"


def dead_letters() -> str:
    """Stream of deliveries that failed permanently or ran out of attempts, with their last error."""
    return f"{PREFIX}:{{o}}:dead"


def delivered(alert_id: str, channel_key: str) -> str:
    """Marker set once a chat API accepted (alert, channel): redelivery after a crash is a no-op."""
    return f"{PREFIX}:{{c:{channel_key}}}:done:{alert_id}"


def installation(team_id: str) -> str:
    """Slack installation (bot token etc.) of one workspace, for multi-workspace deployments."""
    return f"{PREFIX}:slack:install:{team_id}"
