//! `/dashboard/chat/{agent}`: a conversation with an agent. The reply streams in token by
//! token (the portal relays the gateway's SSE stream, so the token stays in its HttpOnly
//! cookie); tool calls show as collapsible cards and citations name document and page.
//! Without JavaScript the same form posts and the page shows the finished turn.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::app::{LoadError, PageHeader, short_time};
use crate::model::{Agent, Citation, Conversation, Me, Message};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatData {
    pub me: Me,
    pub agent: Agent,
    pub conversations: Vec<Conversation>,
    pub messages: Vec<Message>,
}

#[server]
pub async fn load_chat(agent: String, conversation: String) -> Result<ChatData, ServerFnError> {
    use crate::api::{encode, get, get_list};
    let id = encode(&agent);
    let spec: Agent = get(&format!("/v1/agents/{id}")).await?;
    let conversations =
        get_list(&format!("/v1/agents/{id}/conversations"), "conversations").await?;
    let messages = if conversation.is_empty() {
        Vec::new()
    } else {
        get_list(
            &format!("/v1/conversations/{}/messages", encode(&conversation)),
            "messages",
        )
        .await?
    };
    Ok(ChatData {
        me: crate::api::me(),
        agent: spec,
        conversations,
        messages,
    })
}

/// A tool call of a live turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveTool {
    pub id: String,
    pub name: String,
    pub args: String,
    pub status: Option<String>,
    pub summary: String,
}

/// A turn as it streams in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveTurn {
    pub user: String,
    pub reply: String,
    pub tools: Vec<LiveTool>,
    pub citations: Vec<Citation>,
    pub error: Option<String>,
    pub done: bool,
}

#[component]
pub fn ChatPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let agent = move || params.read().get("agent").unwrap_or_default();
    let conversation = move || query.read().get("c").unwrap_or_default();
    let data = Resource::new(move || (agent(), conversation()), |(a, c)| load_chat(a, c));
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadError error=e/> }.into_any(),
                    Ok(d) => view! { <ChatView data=d conversation=conversation()/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The chat page's own state: the turns streamed since it loaded, the conversation they
/// continue, the message being typed, and whether a reply is on its way.
#[derive(Clone, Copy)]
struct Composer {
    set_live: WriteSignal<Vec<LiveTurn>>,
    conversation_id: ReadSignal<String>,
    set_conversation_id: WriteSignal<String>,
    draft: ReadSignal<String>,
    set_draft: WriteSignal<String>,
    busy: ReadSignal<bool>,
    set_busy: WriteSignal<bool>,
}

#[component]
fn ChatView(data: ChatData, conversation: String) -> impl IntoView {
    let ChatData {
        me,
        agent,
        conversations,
        messages,
    } = data;
    let (live, set_live) = signal(Vec::<LiveTurn>::new());
    let (conversation_id, set_conversation_id) = signal(conversation.clone());
    let (draft, set_draft) = signal(String::new());
    let (busy, set_busy) = signal(false);
    let composer = Composer {
        set_live,
        conversation_id,
        set_conversation_id,
        draft,
        set_draft,
        busy,
        set_busy,
    };
    let agent_id = agent.id.clone();
    let history = messages.into_iter().map(message_view).collect_view();
    let list = conversations
        .into_iter()
        .map(|c| conversation_link(c, &conversation, &agent_id))
        .collect_view();
    let can_chat = me.can_chat();
    view! {
        <PageHeader title=format!("Chat with {}", agent.name) subtitle=format!("{} · {}", agent.role, agent.model)/>
        <div class="chat">
            <nav class="conversations card" aria-label="Conversations">
                <h2>"Conversations"</h2>
                <p>
                    <a class="button" href=format!("/dashboard/chat/{agent_id}")>"New conversation"</a>
                </p>
                <ul class="plain">{list}</ul>
            </nav>
            <section class="thread card" aria-label="Messages">
                <ol class="messages plain" aria-live="polite">
                    {history}
                    {move || live.get().into_iter().map(live_view).collect_view()}
                </ol>
                {if can_chat {
                    composer_form(composer, &agent_id, &agent.name).into_any()
                } else {
                    view! { <p class="muted">"Your role can read conversations but not chat."</p> }.into_any()
                }}
            </section>
        </div>
    }
}

/// One of the agent's conversations in the side list; `current` is the one on the page.
fn conversation_link(c: Conversation, current: &str, agent_id: &str) -> impl IntoView + use<> {
    let current = c.id == current;
    let title = c
        .title
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("Conversation of {}", short_time(&c.created_at)));
    view! {
        <li>
            <a
                href=format!("/dashboard/chat/{}?c={}", agent_id, c.id)
                aria-current=current.then_some("page")
            >
                <span class="title">{title}</span>
                <span class="muted small">{short_time(&c.updated_at)}</span>
            </a>
        </li>
    }
}

/// The message form. It posts to the portal's `/send` route, which works without
/// JavaScript; once hydrated the reply streams in place instead.
fn composer_form(composer: Composer, agent_id: &str, agent_name: &str) -> impl IntoView + use<> {
    let on_submit = send_turn(composer, agent_id.to_owned());
    let Composer {
        conversation_id,
        draft,
        set_draft,
        busy,
        ..
    } = composer;
    view! {
        <form
            class="composer"
            method="post"
            action=format!("/dashboard/chat/{agent_id}/send")
            on:submit=on_submit
        >
            <crate::app::CsrfField/>
            <input type="hidden" name="conversation_id" value=move || conversation_id.get()/>
            <label for="message" class="visually-hidden">"Message"</label>
            <textarea
                id="message"
                name="message"
                rows="3"
                required
                placeholder=format!("Message {}", agent_name)
                prop:value=move || draft.get()
                on:input=move |ev| set_draft.set(event_target_value(&ev))
            ></textarea>
            <button id="send" type="submit" class="primary" disabled=move || busy.get()>
                {move || if busy.get() { "Answering…" } else { "Send" }}
            </button>
        </form>
    }
}

/// The composer's submit: refused while empty or answering; once hydrated, the turn is
/// streamed from the portal's relay into the page instead of the form being posted.
fn send_turn(composer: Composer, agent_id: String) -> impl Fn(leptos::ev::SubmitEvent) + 'static {
    move |ev: leptos::ev::SubmitEvent| {
        let message = composer.draft.get_untracked().trim().to_owned();
        if message.is_empty() || composer.busy.get_untracked() {
            ev.prevent_default();
            return;
        }
        #[cfg(feature = "hydrate")]
        {
            let Composer {
                set_live,
                conversation_id,
                set_conversation_id,
                set_draft,
                set_busy,
                ..
            } = composer;
            ev.prevent_default();
            set_busy.set(true);
            set_draft.set(String::new());
            set_live.update(|l| {
                l.push(LiveTurn {
                    user: message.clone(),
                    ..LiveTurn::default()
                })
            });
            let agent = agent_id.clone();
            let conversation = conversation_id.get_untracked();
            leptos::task::spawn_local(async move {
                let update = move |f: &dyn Fn(&mut LiveTurn)| {
                    set_live.update(|l| {
                        if let Some(turn) = l.last_mut() {
                            f(turn);
                        }
                    })
                };
                let outcome = stream::turn(&agent, &message, &conversation, |event, data| {
                    apply_event(event, &data, &update, &set_conversation_id)
                })
                .await;
                if let Err(e) = outcome {
                    update(&|t: &mut LiveTurn| {
                        t.error = Some(e.clone());
                        t.done = true;
                    });
                }
                set_busy.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let Composer {
                set_live,
                set_busy,
                set_conversation_id,
                ..
            } = composer;
            let _ = (&agent_id, message, set_live, set_busy, set_conversation_id);
        }
    }
}

/// Applies a change to the turn being streamed.
#[cfg(feature = "hydrate")]
type TurnUpdate<'a> = &'a dyn Fn(&dyn Fn(&mut LiveTurn));

/// Folds one SSE event into the live turn.
#[cfg(feature = "hydrate")]
fn apply_event(
    event: &str,
    data: &serde_json::Value,
    update: TurnUpdate<'_>,
    set_conversation: &WriteSignal<String>,
) {
    let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
    match event {
        "token" => {
            let t = text("text");
            update(&|turn| turn.reply.push_str(&t));
        }
        "tool_call" => {
            let tool = LiveTool {
                id: text("id"),
                name: format!("{}.{}", text("connector"), text("action")),
                args: serde_json::to_string_pretty(&data["args"]).unwrap_or_default(),
                status: None,
                summary: String::new(),
            };
            update(&|turn| turn.tools.push(tool.clone()));
        }
        "tool_result" => {
            let (id, status, summary) = (text("id"), text("status"), text("summary"));
            update(&|turn| {
                if let Some(tool) = turn.tools.iter_mut().find(|t| t.id == id) {
                    tool.status = Some(status.clone());
                    tool.summary = summary.clone();
                }
            });
        }
        "citation" => {
            if let Ok(c) = serde_json::from_value::<Citation>(data.clone()) {
                update(&|turn| turn.citations.push(c.clone()));
            }
        }
        "done" => {
            if let Some(id) = data["conversation_id"].as_str() {
                set_conversation.set(id.to_owned());
            }
            let reply = text("reply");
            update(&|turn| {
                if turn.reply.is_empty() {
                    turn.reply = reply.clone();
                }
                turn.done = true;
            });
        }
        "error" => {
            let message = text("message");
            update(&|turn| {
                turn.error = Some(message.clone());
                turn.done = true;
            });
        }
        _ => {}
    }
}

fn citations_view(citations: Vec<Citation>) -> impl IntoView {
    (!citations.is_empty()).then(|| {
        view! {
            <ul class="citations plain" aria-label="Sources">
                {citations
                    .into_iter()
                    .map(|c| {
                        view! {
                            <li class="citation" title=c.snippet.clone()>
                                {format!("{} — p. {}", c.title, c.page)}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
    })
}

fn tool_card(name: String, status: String, args: String, summary: String) -> impl IntoView {
    view! {
        <li class="message tool">
            <details class="tool-card">
                <summary>
                    <span class="tool-name">{name}</span>
                    " "
                    <crate::app::Badge status=status/>
                </summary>
                {(!args.is_empty()).then(|| view! { <pre>{args.clone()}</pre> })}
                {(!summary.is_empty()).then(|| view! { <p>{summary.clone()}</p> })}
            </details>
        </li>
    }
}

fn message_view(m: Message) -> AnyView {
    match m.role.as_str() {
        "user" => view! {
            <li class="message user">
                <p class="text">{m.content}</p>
            </li>
        }
        .into_any(),
        "assistant" if !m.content.trim().is_empty() => view! {
            <li class="message assistant">
                <p class="text">{m.content}</p>
                {citations_view(m.citations)}
            </li>
        }
        .into_any(),
        "tool" => {
            let call = m.tool_calls.first().cloned().unwrap_or_default();
            tool_card(
                format!("{}.{}", call.connector, call.action),
                call.status,
                String::new(),
                m.content,
            )
            .into_any()
        }
        _ => ().into_any(),
    }
}

fn live_view(turn: LiveTurn) -> impl IntoView {
    let waiting = turn.reply.is_empty() && !turn.done && turn.tools.is_empty();
    view! {
        <li class="message user">
            <p class="text">{turn.user}</p>
        </li>
        {turn
            .tools
            .into_iter()
            .map(|t| tool_card(t.name, t.status.unwrap_or_else(|| "running".into()), t.args, t.summary))
            .collect_view()}
        <li class="message assistant" aria-busy=(!turn.done).then_some("true")>
            <p class="text">{if waiting { String::new() } else { turn.reply }}</p>
            {waiting.then(|| view! { <p class="muted typing">"Thinking…"</p> })}
            {citations_view(turn.citations)}
            {turn.error.map(|e| view! { <p class="note error">{e}</p> })}
        </li>
    }
}

#[cfg(feature = "hydrate")]
mod stream {
    //! The browser side of the chat stream: a `fetch` to the portal's relay, read as SSE.

    use js_sys::{Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        Headers, ReadableStreamDefaultReader, Request, RequestCredentials, RequestInit, Response,
    };

    fn js(e: JsValue) -> String {
        e.as_string().unwrap_or_else(|| format!("{e:?}"))
    }

    /// Runs one turn, calling `on(event, data)` for each SSE event as it arrives.
    pub async fn turn(
        agent: &str,
        message: &str,
        conversation: &str,
        on: impl Fn(&str, serde_json::Value),
    ) -> Result<(), String> {
        let window = web_sys::window().ok_or("no window")?;
        let body = serde_json::json!({
            "message": message,
            "conversation_id": conversation,
            "csrf": crate::session::csrf_token(),
        });
        let headers = Headers::new().map_err(js)?;
        headers
            .set("content-type", "application/json")
            .map_err(js)?;
        headers.set("accept", "text/event-stream").map_err(js)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_credentials(RequestCredentials::SameOrigin);
        init.set_body(&JsValue::from_str(&body.to_string()));
        let url = format!("/dashboard/chat/{agent}/stream");
        let request = Request::new_with_str_and_init(&url, &init).map_err(js)?;
        let response: Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(js)?
            .dyn_into()
            .map_err(js)?;
        if !response.ok() {
            let text = JsFuture::from(response.text().map_err(js)?)
                .await
                .map_err(js)?
                .as_string()
                .unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or(text);
            return Err(format!("The agent could not answer: {message}"));
        }
        let reader: ReadableStreamDefaultReader = response
            .body()
            .ok_or("empty response")?
            .get_reader()
            .dyn_into()
            .map_err(|e: js_sys::Object| js(e.into()))?;
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let chunk = JsFuture::from(reader.read()).await.map_err(js)?;
            if Reflect::get(&chunk, &"done".into())
                .map_err(js)?
                .as_bool()
                .unwrap_or(true)
            {
                break;
            }
            let value = Reflect::get(&chunk, &"value".into()).map_err(js)?;
            buffer.extend(Uint8Array::new(&value).to_vec());
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buffer.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let mut event = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if !data.is_empty() {
                    let value = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
                    on(event, value);
                }
            }
        }
        Ok(())
    }
}
