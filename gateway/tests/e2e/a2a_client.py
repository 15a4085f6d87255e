"""Talks to a Brain agent published over A2A with the official A2A Python SDK (PyPI
`a2a-sdk`, pinned by `cargo xtask`): resolves its card, sends a message without and with
streaming, reads the task back with GetTask, and checks that another tenant's key is
refused. Exits non-zero on the first mismatch and prints a JSON summary for the Rust test
otherwise. Parameters come as JSON in BRAIN_A2A_CLIENT: {base_url, key, other_key, question}."""

import asyncio
import json
import os
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.helpers import get_stream_response_text
from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState

params = json.loads(os.environ["BRAIN_A2A_CLIENT"])


def check(condition, what):
    if not condition:
        print(f"a2a_client.py: {what}", file=sys.stderr)
        sys.exit(1)


def ask(text):
    return SendMessageRequest(
        message=Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    )


async def send(client, text):
    """The events of one message: (kinds, reply text, last task)."""
    kinds, texts, task = [], [], None
    async for event in client.send_message(ask(text)):
        kind = event.WhichOneof("payload")
        kinds.append(kind)
        text = get_stream_response_text(event)
        if text:
            texts.append(text)
        if kind == "task":
            task = event.task
    return kinds, "".join(texts), task


async def main():
    headers = {"Authorization": f"Bearer {params['key']}"}
    async with httpx.AsyncClient(headers=headers, timeout=120) as http:
        card = await A2ACardResolver(http, params["base_url"]).get_agent_card()
        summary = {
            "card": {
                "name": card.name,
                "url": card.supported_interfaces[0].url,
                "binding": card.supported_interfaces[0].protocol_binding,
                "version": card.supported_interfaces[0].protocol_version,
                "streaming": card.capabilities.streaming,
                "skills": [s.id for s in card.skills],
            }
        }
        client = await create_client(card, client_config=ClientConfig(httpx_client=http, streaming=False))
        kinds, reply, task = await send(client, params["question"])
        check(task is not None, f"no task in {kinds}")
        check(task.status.state == TaskState.TASK_STATE_COMPLETED, f"state {task.status.state}")
        again = await client.get_task(GetTaskRequest(id=task.id))
        summary["blocking"] = {
            "kinds": kinds,
            "reply": reply,
            "task_id": task.id,
            "get_task_state": TaskState.Name(again.status.state),
            "get_task_reply": again.artifacts[0].parts[0].text if again.artifacts else None,
        }
        await client.close()

        client = await create_client(card, client_config=ClientConfig(httpx_client=http, streaming=True))
        kinds, reply, task = await send(client, params["question"])
        summary["streaming"] = {"kinds": kinds, "reply": reply}
        await client.close()

    other = {"Authorization": f"Bearer {params['other_key']}"}
    async with httpx.AsyncClient(headers=other, timeout=60) as http:
        client = await create_client(card, client_config=ClientConfig(httpx_client=http, streaming=False))
        try:
            await send(client, params["question"])
            summary["other_tenant"] = "answered"
        except Exception as e:  # the SDK raises its own error types for an HTTP 404
            summary["other_tenant"] = f"{type(e).__name__}: {e}"
        await client.close()
    print(json.dumps(summary))


asyncio.run(main())
