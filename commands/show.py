"""`/access show`: everything about one request, reviews included, to those who may see it."""

from __future__ import annotations

from commands import messages
from commands.context import Context
from commands.errors import UsageError
from commands.grammar import ShowCommand
from commands.model import AccessRequest, RequestState
from commands.reply import Action, Invocation, Reply


async def run(command: ShowCommand, invocation: Invocation, ctx: Context) -> Reply:
    user, roles = await ctx.user_and_roles(await ctx.teleport_user(invocation), fresh=False)

    def visible(request: AccessRequest) -> bool:
        # As in Teleport: your own requests, and those you may review.
        return request.user == user.name or ctx.review_decision(user, roles, request).allowed

    request = await ctx.find_request(command.request_id, visible, fresh=False)
    if not visible(request):
        raise UsageError(messages.not_found(command.request_id))
    may_review = (
        request.user != user.name
        and not ctx.config.web_only_roles.intersection(request.roles)
        and not any(r.author == user.name for r in request.reviews)
    )
    actions = (Action.APPROVE, Action.DENY) if may_review else ()
    card = messages.card(request, now=ctx.clock.now(), actions=actions, web_url=ctx.web_url(request.id),
                         tally=await ctx.tally(request), tz=invocation.actor.tz,
                         details=await ctx.card_details(request))
    text = f"Request {messages.short_id(request.id)}"
    if request.user == user.name and request.state is RequestState.APPROVED:
        text += f". {messages.how_to_use(request, ctx.web_url(request.id))}"
    return Reply(text=text, cards=(card,))
