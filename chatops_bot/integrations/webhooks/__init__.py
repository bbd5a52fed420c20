"""Webhooks (issue 17): signed outbound events to any number of endpoints, and a decision hook.

- `settings`: the `webhooks:` config section (imported by `chatops_bot.config`, so this package's
  `__init__` imports nothing else);
- `events`: request snapshots -> events and their versioned JSON payload (docs/webhook-event.schema.json);
- `send`: one signed POST (Standard Webhooks) and what the receiver answered;
- `delivery`: at-least-once delivery of one event to one endpoint, recorded in plugin data;
- `outbound`: the watcher follower that sends each request's events, in order;
- `decide`: the decision hook, a `Decider`;
- `integration`: `build(settings, client)` -> the `Integration` the runtime wires in.
"""
