"""The gateway as an MCP server: ``/mcp`` (every registered server's tools, prompts and resources a key
may use) and one endpoint per server. `server.McpEndpoint` runs it on the SDK's server side;
`catalog` names things and decides what a caller sees; `tools` and `upstream` answer the requests.
Nothing here is imported unless the endpoint is served (the SDK's server side is a heavy import)."""
