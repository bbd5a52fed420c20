"""The Slack adapter: `/access`, Approve / Deny buttons and forms, over HTTP or Socket Mode, in Block Kit."""

from chatops_bot.adapters.slack.app import SlackAdapter, SlackStartError, build
from chatops_bot.adapters.slack.manifest import manifest

__all__ = ["SlackAdapter", "SlackStartError", "build", "manifest"]
