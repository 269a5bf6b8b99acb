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
    """Hash {v: version, s: SurfaceState JSON, w: token of the commit that wrote it}; written only
    by the commit CAS script, read by every poll, `status` and the App Home board."""
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
    """Hash {etag, last_modified, body}: the last good summary.json and its validators, written by
    the commit script, read by the claim script, so any replica can GET conditionally."""
    return f"{PREFIX}:{{p:{provider}}}:etag"


# -- channels (issue 3) ---------------------------------------------------------------------------


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


def workspace_channels(platform: str, workspace: str) -> str:
    """Set of the channel keys of one workspace/guild with a subscription (a superset, like
    `channels_of`); read by `SubscriptionStore.list_workspace` for Slack's App Home."""
    return f"{PREFIX}:{{w:{platform}:{workspace}}}:channels"


def crowd(surface: str) -> str:
    """Sorted set of crowd reports, member `<workspace>|<user>`, score = report time (epoch s)."""
    return f"{PREFIX}:{{s:{surface}}}:crowd"


def crowd_budget(workspace: str, bucket: int, user: str | None = None) -> str:
    """Counter of crowd reports in one window `bucket`: of one user of a workspace (or, without
    `user`, of the whole workspace). Read and bumped by CrowdStore.report; expires."""
    who = f":u:{user}" if user is not None else ""
    return f"{PREFIX}:{{b:{workspace}}}:crowd:budget:{bucket}{who}"


def crowd_user(surface: str, workspace: str, user: str) -> str:
    """SET NX EX: one report per user per surface per window."""
    return f"{PREFIX}:{{s:{surface}}}:crowd:u:{workspace}:{user}"


# -- delivery (issues 4-6) ------------------------------------------------------------------------


def outbox() -> str:
    """Stream of delivery entries, one per (alert, channel); consumer group `workers`."""
    return f"{PREFIX}:{{o}}:outbox"


def dead_letters() -> str:
    """Stream of deliveries that failed for good or ran out of attempts, with their last error."""
    return f"{PREFIX}:{{o}}:dead"


def readiness() -> str:
    """SET PX probe written by /readyz: the bot can write to the outbox's slot right now."""
    return f"{PREFIX}:{{o}}:ready"


def fanned(alert_id: str, channel_key: str) -> str:
    """SET NX PX marker: fan-out already wrote the outbox entry of (alert, channel); written by
    the enqueue script with the entry, so a fan-out re-run after a crash adds no duplicate."""
    return f"{PREFIX}:{{o}}:fanned:{channel_key}:{alert_id}"


def queued(channel_key: str, outage_id: str) -> str:
    """Marker (PX): some entry of this outage was queued for this channel; fan-out reads it as
    `has_parent` before the parent message exists."""
    return f"{PREFIX}:{{o}}:queued:{channel_key}:{outage_id}"


def outbox_seq(channel_key: str) -> str:
    """Counter: the last per-channel sequence number given to an outbox entry (enqueue script);
    workers deliver a channel's entries in this order."""
    return f"{PREFIX}:{{o}}:seq:{channel_key}"


def tally(alert_id: str) -> str:
    """Hash {total, done, retried, dead, q first queued-at, what}: an alert's entries written
    (enqueue script) and finished (workers); the worker whose entry makes done == total logs
    the alert's one summary line."""
    return f"{PREFIX}:{{o}}:tally:{alert_id}"


def retrying() -> str:
    """Hash outbox entry id -> JSON {channel, alert_id, attempts, error}: entries that failed at
    least once and wait for another attempt; read by `aistatus deliveries`."""
    return f"{PREFIX}:{{o}}:retrying"


def fanout_lease() -> str:
    """SET NX PX lease: the one consumer that fans transitions out right now (keeps the outbox in
    transition order when several replicas run); renewed while held."""
    return f"{PREFIX}:{{o}}:fanout:lease"


def handled_seq(channel_key: str) -> str:
    """The highest outbox sequence number of this channel that is done (delivered or dead);
    written with the parent message ref, read by workers to keep per-channel order (and to
    acknowledge a redelivered entry without sending it)."""
    return f"{PREFIX}:{{c:{channel_key}}}:seq"


def channel_lease(channel_key: str) -> str:
    """SET NX PX lease: the one worker sending to this channel right now (across replicas)."""
    return f"{PREFIX}:{{c:{channel_key}}}:lease"


def sending(channel_key: str) -> str:
    """The sequence number of the channel's entry whose chat call may have been made but is not
    recorded done (set by outbox_begin, cleared by outbox_complete / outbox_release): when it
    is still there at the next attempt, that attempt's outcome is unknown and the sender checks
    the channel before sending again."""
    return f"{PREFIX}:{{c:{channel_key}}}:sending"


def consumer_beat(consumer: str) -> str:
    """SET PX heartbeat of one delivery consumer, refreshed every second: a consumer whose
    heartbeat is gone (stopped, or dead) has its pending outbox entries taken over at once."""
    return f"{PREFIX}:{{o}}:beat:{consumer}"


def installation(team_id: str) -> str:
    """Hash {installation, bot}: JSON of the Slack installation (bot token etc.) of one workspace,
    for multi-workspace deployments; written by the OAuth flow, read by the Bolt app and sender."""
    return f"{PREFIX}:slack:install:{team_id}"


def oauth_state(state: str) -> str:
    """SET EX: one Slack OAuth `state` we issued; deleted when the install callback consumes it."""
    return f"{PREFIX}:slack:oauth-state:{state}"


# -- outgoing webhooks (issue 14) -----------------------------------------------------------------


def webhook(channel_key: str) -> str:
    """Hash {url, secret, format, at}: one outgoing webhook, beside its subscription in the
    channel's slot; written by `aistatus webhooks add`, read by the webhook sender per POST."""
    return f"{PREFIX}:{{c:{channel_key}}}:webhook"


def webhooks() -> str:
    """Set of the ids of every outgoing webhook; read by `aistatus webhooks list`."""
    return f"{PREFIX}:webhooks"
