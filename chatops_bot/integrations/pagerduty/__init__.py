"""PagerDuty: on-call auto-approval scoped per role, schedule and escalation level (issue 16).

`client` speaks PagerDuty's REST API v2; `settings` is the `pagerduty` config section; `oncall` asks who is
on call and what is open; `rules` decides, without I/O, whether on-call facts satisfy the configured rules;
`decider` is the `PagerDutyDecider` the shared automatic reviewer asks about each pending request.
"""
