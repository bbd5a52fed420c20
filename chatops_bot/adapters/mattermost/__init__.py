"""Mattermost: `/access`, Approve / Deny buttons, the request dialog, REST posts and DMs, registration."""

from chatops_bot.adapters.mattermost.adapter import MattermostAdapter, build
from chatops_bot.adapters.mattermost.outbound import MattermostOutbound, RetryPolicy, StartError
from chatops_bot.adapters.mattermost.register import register_command
from chatops_bot.adapters.mattermost.render import Renderer

__all__ = ["MattermostAdapter", "MattermostOutbound", "Renderer", "RetryPolicy", "StartError", "build",
           "register_command"]
