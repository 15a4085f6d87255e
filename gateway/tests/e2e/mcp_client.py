"""Connects the official MCP Python SDK (PyPI `mcp`, pinned by `cargo xtask`) to Brain's
`/mcp` with API keys, once on the current protocol revision (the SDK's `auto` mode) and once
with the older initialize handshake (`legacy`): lists the tools, asks an agent twice in one
conversation, searches knowledge, and checks that a key of another tenant neither sees nor
reaches that agent. Exits non-zero on the first mismatch and prints a JSON summary for the
Rust test otherwise. Parameters come as JSON in BRAIN_MCP_CLIENT:
{url, key, other_key, slug, other_slug, question}."""

import asyncio
import json
import os
import sys

import httpx2
import mcp
from mcp.client.streamable_http import streamable_http_client

params = json.loads(os.environ["BRAIN_MCP_CLIENT"])


def check(condition, what):
    if not condition:
        print(f"mcp_client.py: {what}", file=sys.stderr)
        sys.exit(1)


def client(key, mode):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
    transport = streamable_http_client(params["url"], http_client=http)
    return mcp.Client(transport, mode=mode, read_timeout_seconds=120)


def text_of(result):
    return "".join(block.text for block in result.content if block.type == "text")


async def refused(session, name, arguments):
    """The error a call gets, or None when it ran."""
    try:
        result = await session.call_tool(name, arguments)
    except mcp.MCPError as e:
        return str(e)
    return "tool error: " + text_of(result) if result.is_error else None


async def as_owner(mode):
    ask = f"ask_{params['slug']}"
    async with client(params["key"], mode) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        check(ask in tools, f"{ask} not in {sorted(tools)}")
        check(f"ask_{params['other_slug']}" not in tools, f"another tenant's agent in {sorted(tools)}")
        check("knowledge_search" in tools, f"knowledge_search not in {sorted(tools)}")
        check(tools[ask].input_schema["required"] == ["message"], f"schema {tools[ask].input_schema}")

        first = await session.call_tool(ask, {"message": params["question"]})
        check(not first.is_error, f"first turn failed: {text_of(first)}")
        conversation = first.structured_content["conversation_id"]
        second = await session.call_tool(
            ask, {"message": "And once more?", "conversation_id": conversation}
        )
        check(not second.is_error, f"second turn failed: {text_of(second)}")
        check(
            second.structured_content["conversation_id"] == conversation,
            f"the second turn left the conversation: {second.structured_content}",
        )
        search = await session.call_tool("knowledge_search", {"query": "brand voice"})
        check(not search.is_error, f"search failed: {text_of(search)}")
        bad = await refused(session, ask, {"prompt": "the wrong field"})
        check(bad is not None, "a call with unknown arguments ran")
        return {
            "protocol": session.protocol_version,
            "tools": sorted(tools),
            "answer": text_of(first),
            "conversation_id": conversation,
            "search": search.structured_content,
            "bad_arguments": bad,
        }


async def as_other_tenant():
    async with client(params["other_key"], "auto") as session:
        tools = sorted(tool.name for tool in (await session.list_tools()).tools)
        error = await refused(session, f"ask_{params['slug']}", {"message": params["question"]})
        return {"tools": tools, "reach_other_agent": error}


async def main():
    summary = {
        "sdk": mcp.__version__ if hasattr(mcp, "__version__") else "mcp",
        "current": await as_owner("auto"),
        "legacy": await as_owner("legacy"),
        "other_tenant": await as_other_tenant(),
    }
    print(json.dumps(summary))


asyncio.run(main())
