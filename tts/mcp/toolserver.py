"""The MCP server of `tts mcp` on the official `mcp` SDK: the three tools declared with their
argument schemas and descriptions, served over stdio or streamable HTTP (a bearer token guards
HTTP when one is set; anything but loopback needs one, as for `tts serve`)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from tts.errors import ConfigError
from tts.mcp import claims as claims_tool
from tts.mcp import tools
from tts.mcp.claims import Claim
from tts.mcp.tool_run import Budget, Service, ToolFailure

INSTRUCTIONS = """Test-time scaling as tools: spend more model calls on one hard sub-question.
solve: answer a question with a test-time-scaling strategy (votes, a tournament bracket, confidence).
select: pick the best of your own candidates (answers, patches, plans) by a judge tournament (RTV), a
listwise judge or a majority vote. check_claims: check claims, each with its negation, by a model that
never saw your conversation. Every result reports the model calls and tokens it used; `budget` caps one call."""

SpecArg = Annotated[dict[str, Any] | str | None, Field(
    description="a kind name (e.g. 'self-consistency') or a spec object with a 'kind' and its fields, as in a "
                "tts spec file (e.g. {\"kind\": \"self-consistency\", \"n\": 8}); default: the server's")]
BudgetArg = Annotated[Budget | None, Field(description="caps for this call alone (the server's caps apply too); "
                                                       "a spent budget is a tool error that says so")]


def build_server(service: Service) -> MCPServer:
    """The MCPServer with `solve`, `select` and `check_claims` bound to `service`."""
    server: MCPServer = MCPServer("tts", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(description="Answer a question with a test-time-scaling strategy (the server's default, or "
                 "the one named). Returns the answer, its votes or tournament bracket, confidence where the "
                 "model gives logprobs, and the model calls, tokens and cost it used.")
    async def solve(question: Annotated[str, Field(description="the question or task, self-contained")],
                    strategy: SpecArg = None, budget: BudgetArg = None, ctx: Context = None) -> dict[str, Any]:
        return await _guard(service, tools.solve(service, question, strategy, budget, progress=ctx))

    @server.tool(description="Pick the best of your own candidates (answers, patches, plans) for a question: "
                 "by recursive tournament voting of an LLM judge (rtv, the default), one listwise judge call "
                 "(listwise-judge) or a majority of their answers (majority). Returns the ranking, each "
                 "contest's votes, and the model calls and tokens used.")
    async def select(question: Annotated[str, Field(description="what the candidates are for: the question "
                                                               "or task they answer")],
                     candidates: Annotated[list[str], Field(min_length=2, description="the candidates' full "
                                                            "texts; ids in the result are their 1-based "
                                                            "positions")],
                     method: Annotated[dict[str, Any] | str | None, Field(
                         description="rtv (default), listwise-judge, majority, or any selector spec object, "
                                     "e.g. {\"kind\": \"rtv\", \"votes\": 4}")] = None,
                     budget: BudgetArg = None, ctx: Context = None) -> dict[str, Any]:
        return await _guard(service, tools.select(service, question, candidates, method, budget, progress=ctx))

    @server.tool(description="Check claims: each claim and its negation is proved and graded by a model in a "
                 "fresh context holding only that statement (never your conversation). Returns per claim a "
                 "verdict (proven, disproved, conflict or open), the checkers' votes and grades, and the "
                 "model calls and tokens used.")
    async def check_claims(claims: Annotated[list[str | Claim], Field(
                               min_length=1, description="self-contained claims: strings, or "
                               "{statement, negation} objects")],
                           context: Annotated[str | None, Field(
                               description="definitions every claim needs (written into each claim's "
                                           "check); not your conversation")] = None,
                           checkers: Annotated[int, Field(ge=1, le=9, description="independent checks per "
                                                          "claim; the verdict is their majority")] = 1,
                           budget: BudgetArg = None, ctx: Context = None) -> dict[str, Any]:
        return await _guard(service, claims_tool.check_claims(service, claims, context, checkers, budget,
                                                              progress=ctx))

    return server


async def _guard(service: Service, call: Any) -> dict[str, Any]:
    """The tool's result; a ToolFailure or a ConfigError as a tool error (one line, no secret)."""
    try:
        return await call
    except (ToolFailure, ConfigError) as exc:
        raise ToolError(service.redact(str(exc))) from None


def bearer_guard(app: Any, token: str) -> Any:
    """An ASGI app that answers 401 to any HTTP request without `Authorization: Bearer <token>`."""
    from tts.serve.security import bearer_ok

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if not bearer_ok(auth, token):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body",
                            "body": b'{"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"}'})
                return
        await app(scope, receive, send)

    return guarded


async def serve_http(server: MCPServer, host: str, port: int, token: str | None,
                     on_listening: Any = None) -> None:
    """Serve streamable HTTP at http://host:port/mcp until cancelled."""
    import socket

    import uvicorn

    app = server.streamable_http_app(host=host)
    if token:
        app = bearer_guard(app, token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # bound here so port 0 can be reported before serving
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    if on_listening is not None:
        on_listening(sock.getsockname()[1])
    await uvicorn.Server(config).serve(sockets=[sock])
