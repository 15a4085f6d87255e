//! Local stand-ins for what Brain talks to outside: OpenAI-compatible and Anthropic models that
//! stream,
//! WordPress and HubSpot as far as the tests use them, and PDFs to upload.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt;
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use serde_json::{Value, json};

/// A streamed chat completion of `chunks` in OpenAI's SSE wire format, `[DONE]` last.
pub fn chat_stream(chunks: &[Value]) -> wiremock::ResponseTemplate {
    let body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    wiremock::ResponseTemplate::new(200)
        .set_body_raw(format!("{body}data: [DONE]\n\n"), "text/event-stream")
}

/// One chunk of `model` carrying the whole answer `text`.
pub fn answer_chunk(model: &str, text: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "model": model,
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]})
}

/// A streamed Anthropic Messages reply carrying the whole answer `text`, as the Messages
/// API sends its events.
pub fn anthropic_stream(text: &str) -> wiremock::ResponseTemplate {
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": text}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
               "stop_sequence": null}, "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ];
    let body: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect();
    wiremock::ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// Serves `router` on a free port in this test's runtime; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn sse_chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

pub const REPLY: &str = "Our brand voice is warm and concise, and it never uses exclamation marks.";

/// What the fake model answers a crew member given `prompt`: the task it was handed, and
/// whether it saw an earlier member's result.
fn crew_answer(prompt: &str) -> Option<String> {
    let task = prompt.split("Your task: ").nth(1)?.lines().next()?.trim();
    let earlier = if prompt.contains("Results of the earlier tasks") {
        ", building on the earlier result"
    } else {
        ""
    };
    Some(format!("{task}: done{earlier}."))
}

/// The fake model: a HubSpot call for the approval task, a WordPress call when asked to draft
/// a post, a short confirmation after a tool result, a crew member's answer (`crew_answer`)
/// and otherwise `REPLY`, streamed word by word with pauses so the browser shows it arriving.
pub async fn model(Json(request): Json<Value>) -> Response {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let crew = (last["role"] == "user")
        .then(|| last["content"].as_str().and_then(crew_answer))
        .flatten();
    let wants_contact = messages
        .iter()
        .any(|m| m["role"] == "user" && m["content"].to_string().contains("ada@example.com"));
    let wants_post = last["role"] == "user" && last["content"].to_string().contains("Draft a post");
    let mut events: Vec<(String, u64)> = Vec::new();
    if last["role"] == "tool" {
        events.push((
            sse_chunk(json!({"role": "assistant", "content": "Done."}), None),
            0,
        ));
        events.push((sse_chunk(json!({}), Some("stop")), 0));
    } else if wants_post {
        let call = json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_post",
            "type": "function", "function": {"name": "wordpress__create_post",
            "arguments": json!({"title": "Spring", "content": "Warm and concise."}).to_string()}}]});
        events.push((sse_chunk(call, None), 0));
        events.push((sse_chunk(json!({}), Some("tool_calls")), 0));
    } else if wants_contact {
        let call = json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_ada",
            "type": "function", "function": {"name": "hubspot__create_contact",
            "arguments": json!({"email": "ada@example.com"}).to_string()}}]});
        events.push((sse_chunk(call, None), 0));
        events.push((sse_chunk(json!({}), Some("tool_calls")), 0));
    } else {
        let (reply, pause) = match &crew {
            Some(answer) => (answer.as_str(), 250),
            None => (REPLY, 120),
        };
        events.push((
            sse_chunk(json!({"role": "assistant", "content": ""}), None),
            0,
        ));
        for word in reply.split_inclusive(' ') {
            events.push((sse_chunk(json!({"content": word}), None), pause));
        }
        events.push((sse_chunk(json!({}), Some("stop")), 0));
    }
    events.push(("data: [DONE]\n\n".to_owned(), 0));
    let stream = futures::stream::iter(events).then(|(chunk, pause)| async move {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        Ok::<_, Infallible>(chunk)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn day(back: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = i64::try_from((now - back * 86_400) / 86_400).unwrap();
    brain_portal::charts::civil_date(days)
}

/// WordPress's REST API as far as connecting and charting use it.
pub fn wordpress() -> axum::Router {
    let posts: Vec<Value> = [(0, 2), (1, 1), (3, 4), (6, 2), (9, 3)]
        .into_iter()
        .flat_map(|(back, n)| {
            (0..n).map(move |i| {
                json!({"id": back * 10 + i, "date": format!("{}T09:{:02}:00", day(back), i),
                       "status": "publish", "title": {"rendered": format!("Post {back}-{i}")}})
            })
        })
        .collect();
    axum::Router::new()
        .route(
            "/wp-json/wp/v2/users/me",
            get(|| async { Json(json!({"id": 1, "name": "admin", "slug": "admin"})) }),
        )
        .route(
            "/wp-json/wp/v2/posts",
            get(move || {
                let posts = posts.clone();
                async move { Json(Value::Array(posts)) }
            })
            .post(|| async {
                (
                    axum::http::StatusCode::CREATED,
                    Json(json!({"id": 99, "status": "draft", "title": {"rendered": "Spring"}})),
                )
            }),
        )
}

/// HubSpot's CRM v3 contacts, for the task that creates one.
pub fn hubspot() -> axum::Router {
    let contacts: Vec<Value> = [(0, 3), (2, 5), (5, 2)]
        .into_iter()
        .flat_map(|(back, n)| {
            (0..n).map(move |i| {
                json!({"id": format!("{back}{i}"), "createdAt": format!("{}T10:00:00Z", day(back)),
                       "properties": {"email": format!("c{back}{i}@example.com")}})
            })
        })
        .collect();
    axum::Router::new().route(
        "/crm/v3/objects/contacts",
        get(move || {
            let contacts = contacts.clone();
            async move { Json(json!({"results": contacts})) }
        })
        .post(|| async { (axum::http::StatusCode::CREATED, Json(json!({"id": "901"}))) }),
    )
}

/// A PDF whose page `i + 1` shows `pages[i]`.
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::<Object>::new();
    for text in pages {
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 11.into()]),
                Operation::new("Td", vec![72.into(), 760.into()]),
                Operation::new("Tj", vec![Object::string_literal(*text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        kids.push(
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            })
            .into(),
        );
    }
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
