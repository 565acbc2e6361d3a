"""`tts mcp`: test-time scaling as tools an agent can call over the Model Context Protocol.

- `solve(question, strategy?, budget?)`: a strategy's answer, with its votes or bracket and usage.
- `select(question, candidates, method?, budget?)`: the caller's candidates ranked by RTV (default),
  a listwise judge or a majority vote, with each contest's votes.
- `check_claims(claims, context?, budget?)`: each claim and its negation checked in a detached context.

The tool bodies are `tts.mcp.tools` and `tts.mcp.claims` (plain async functions); one call's
budget, progress and cancellation are `tts.mcp.tool_run`; the MCP server itself (the `mcp` extra:
`pip install 'tts-scaling[mcp]'`) is `tts.mcp.toolserver`. Importing this package imports nothing.
See docs/mcp.md.
"""
