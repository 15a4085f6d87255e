"""Drives Brain's OpenAI-compatible surface with the official OpenAI Python SDK (PyPI
`openai`, pinned by `cargo xtask`): models, chat completions (plain, streamed with and
without `include_usage`, `json_schema`), responses (plain, continued with
`previous_response_id`, streamed, `json_schema`) and
four refusals. Every call goes
through the SDK's own parsing; the script exits non-zero on the first mismatch and prints
a JSON summary for the Rust test otherwise. Parameters come as JSON in BRAIN_OPENAI_SDK:
{base_url, api_key, model, question}."""

import json
import os
import sys

import openai

params = json.loads(os.environ["BRAIN_OPENAI_SDK"])
client = openai.OpenAI(
    base_url=params["base_url"], api_key=params["api_key"], max_retries=0, timeout=300
)
model, question = params["model"], params["question"]
summary = {"sdk": openai.__version__}


def check(condition, what):
    if not condition:
        print(f"openai_sdk.py: {what}", file=sys.stderr)
        sys.exit(1)


models = client.models.list()
check(model in [m.id for m in models.data], f"{model} not in {models.data}")

messages = [
    {"role": "system", "content": "ignored: the agent keeps its own instructions"},
    {"role": "user", "content": question},
]
done = client.chat.completions.create(model=model, messages=messages)
check(done.object == "chat.completion", f"object {done.object}")
choice = done.choices[0]
check(choice.message.role == "assistant" and choice.message.content, f"message {choice}")
check(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason}")
usage = done.usage
check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0, f"usage {usage}")
summary["chat"] = choice.message.content

text, finish, usage, last_choices = "", None, None, None
stream = client.chat.completions.create(
    model=model, messages=messages, stream=True, stream_options={"include_usage": True}
)
for chunk in stream:
    check(chunk.object == "chat.completion.chunk", f"chunk {chunk}")
    check(usage is None, "a chunk after the usage chunk")
    if chunk.usage is not None:
        check(chunk.choices == [], f"the usage chunk has choices {chunk.choices}")
        usage = chunk.usage
        continue
    text += chunk.choices[0].delta.content or ""
    finish = chunk.choices[0].finish_reason or finish
check(text and finish == "stop", f"streamed {text!r}, finish {finish}")
check(usage is not None and usage.total_tokens > 0, f"stream usage {usage}")
summary["chat_stream"] = text

plain = list(client.chat.completions.create(model=model, messages=messages, stream=True))
check(all(c.usage is None for c in plain), "usage sent without include_usage")
check(plain[-1].choices[0].finish_reason == "stop", f"last chunk {plain[-1]}")

response = client.responses.create(model=model, input=question)
check(response.object == "response" and response.status == "completed", f"{response}")
check(response.output_text, f"no output_text in {response}")
check(response.usage.total_tokens > 0, f"responses usage {response.usage}")
summary["response"] = response.output_text
followup = client.responses.create(
    model=model, input="Say it again, shorter.", previous_response_id=response.id
)
check(followup.previous_response_id == response.id, f"{followup}")
check(followup.status == "completed" and followup.output_text, f"{followup}")
summary["response_followup"] = followup.output_text

types, deltas, completed = [], "", None
for event in client.responses.create(
    model=model,
    input=[{"role": "user", "content": [{"type": "input_text", "text": question}]}],
    stream=True,
):
    types.append(event.type)
    if event.type == "response.output_text.delta":
        deltas += event.delta
    if event.type == "response.completed":
        completed = event.response
check(types[:2] == ["response.created", "response.in_progress"], f"events {types}")
check(types[-1] == "response.completed", f"events {types}")
check(completed is not None and completed.output_text == deltas, f"{completed} vs {deltas!r}")
sequence = [t for t in types if t != "response.output_text.delta"]
check(
    sequence
    == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ],
    f"events {types}",
)
summary["response_stream"] = deltas

schema = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
    "additionalProperties": False,
}
structured = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": params["question"]}],
    response_format={
        "type": "json_schema",
        "json_schema": {"name": "greeting", "schema": schema, "strict": True},
    },
)
value = json.loads(structured.choices[0].message.content)
check(isinstance(value, dict) and isinstance(value.get("greeting"), str), f"{value}")
summary["chat_json_schema"] = value
structured = client.responses.create(
    model=model,
    input=question,
    text={"format": {"type": "json_schema", "name": "greeting", "schema": schema}},
)
value = json.loads(structured.output_text)
check(isinstance(value, dict) and isinstance(value.get("greeting"), str), f"{value}")
summary["response_json_schema"] = value

try:
    client.chat.completions.create(model="agent:nobody", messages=messages)
    check(False, "an unknown agent answered")
except openai.NotFoundError as e:
    check(e.body["param"] == "model" and e.body["type"] == "invalid_request_error", f"{e.body}")
try:
    client.chat.completions.create(model=model, messages=messages, n=2)
    check(False, "n=2 answered")
except openai.BadRequestError as e:
    check(e.body["param"] == "n" and e.body["code"] == "invalid_body", f"{e.body}")
try:
    client.chat.completions.create(model=model, messages=[{"role": "user"}])
    check(False, "a message without content answered")
except openai.BadRequestError as e:
    check(e.body["type"] == "invalid_request_error", f"{e.body}")
try:
    stranger = openai.OpenAI(base_url=params["base_url"], api_key="bk_not-a-key", max_retries=0)
    stranger.models.list()
    check(False, "a wrong key was let in")
except openai.AuthenticationError as e:
    check(e.body["type"] == "authentication_error" and e.body["code"] == "unauthorized", f"{e.body}")
summary["refusals"] = 4

print(json.dumps(summary))
