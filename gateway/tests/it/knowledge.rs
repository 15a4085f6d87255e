//! `/v1/knowledge…` through the gateway: collections, multipart uploads ingested in the
//! background with the local model, status polling, hybrid search with page citations,
//! tenant isolation, permissions, and refused uploads (too large, wrong type, not a PDF).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{Reply, TestApp, call, get, post};

const PASSWORD: &str = "correct horse battery staple";

async fn signup(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (
        reply.body["tenant"]["slug"].as_str().unwrap().to_owned(),
        reply.body["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn create_collection(app: &TestApp, token: &str, name: &str) -> String {
    let reply = post(
        &app.gateway,
        "/v1/knowledge/collections",
        Some(token),
        json!({"name": name}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Posts `bytes` as the multipart field `file`.
async fn upload(
    app: &TestApp,
    token: &str,
    collection: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> Reply {
    let boundary = "brain-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nquarterly\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/knowledge/collections/{collection}/documents"))
        .header("authorization", format!("Bearer {token}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    let response = app.gateway.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls the document until it is `ready` or `failed`.
async fn settled(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let reply = get(
            &app.gateway,
            &format!("/v1/knowledge/documents/{id}"),
            Some(token),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if matches!(reply.body["status"].as_str(), Some("ready" | "failed")) {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("document {id} did not settle within 60 s");
}

async fn documents(app: &TestApp, token: &str, collection: &str) -> Vec<Value> {
    let reply = get(
        &app.gateway,
        &format!("/v1/knowledge/collections/{collection}/documents"),
        Some(token),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body.as_array().unwrap().clone()
}

/// A PDF whose page `i + 1` shows `pages[i]`.
fn pdf(pages: &[&str]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
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
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            })
            .into(),
        );
    }
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

const PAGES: [&str; 3] = [
    "Quarterly revenue grew twelve percent in the northern sales region.",
    "The brand voice is warm and concise and never uses exclamation marks.",
    "Customers may return any purchase within thirty days for a full refund.",
];

#[tokio::test]
async fn an_uploaded_pdf_is_ingested_and_search_cites_the_right_page() {
    let app = TestApp::new().await;
    let (_, token) = signup(&app, "Knowledge Co", "owner@knowledge.test").await;
    let collection = create_collection(&app, &token, "Handbook").await;

    let listed = get(&app.gateway, "/v1/knowledge/collections", Some(&token)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body[0]["name"], "Handbook");
    assert_eq!(listed.body[0]["dimension"], 384);
    let again = post(
        &app.gateway,
        "/v1/knowledge/collections",
        Some(&token),
        json!({"name": "Handbook"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    let bytes = pdf(&PAGES);
    let reply = upload(
        &app,
        &token,
        &collection,
        "Handbook.pdf",
        "application/pdf",
        &bytes,
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.body["status"], "queued");
    let id = reply.body["document_id"].as_str().unwrap().to_owned();

    let doc = settled(&app, &token, &id).await;
    assert_eq!(doc["status"], "ready", "{doc}");
    assert_eq!(doc["pages"], 3);
    assert!(doc["chunks"].as_u64().unwrap() >= 3, "{doc}");
    assert_eq!(doc["progress"], 1.0);
    assert_eq!(doc["title"], "Handbook");
    assert!(doc.get("error").is_none(), "{doc}");

    let search = |query: &'static str| {
        let (app, token, collection) = (&app, &token, &collection);
        async move {
            let reply = post(
                &app.gateway,
                &format!("/v1/knowledge/collections/{collection}/search"),
                Some(token),
                json!({"query": query, "k": 3}),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.body["hits"].as_array().unwrap().clone()
        }
    };
    let hits = search("how many days do customers have to send a purchase back?").await;
    assert_eq!(hits[0]["page"], 3, "{hits:?}");
    assert_eq!(hits[0]["document_id"], id.as_str());
    assert_eq!(hits[0]["title"], "Handbook");
    assert!(hits[0]["text"].as_str().unwrap().contains("thirty days"));
    for field in ["chunk_id", "score"] {
        assert!(hits[0].get(field).is_some(), "{field} missing: {hits:?}");
    }
    let hits = search("what tone should our writing have").await;
    assert_eq!(hits[0]["page"], 2, "{hits:?}");

    // Identical bytes are the same document.
    let dup = upload(
        &app,
        &token,
        &collection,
        "copy.pdf",
        "application/pdf",
        &bytes,
    )
    .await;
    assert_eq!(dup.status, StatusCode::ACCEPTED, "{}", dup.body);
    assert_eq!(dup.body["document_id"], id.as_str());
    assert_eq!(dup.body["deduplicated"], true);
    assert_eq!(documents(&app, &token, &collection).await.len(), 1);

    let empty = post(
        &app.gateway,
        &format!("/v1/knowledge/collections/{collection}/search"),
        Some(&token),
        json!({"query": "  "}),
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    let path = format!("/v1/knowledge/documents/{id}");
    let deleted = call(&app.gateway, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(
        get(&app.gateway, &path, Some(&token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(search("refund within thirty days").await.is_empty());

    let path = format!("/v1/knowledge/collections/{collection}");
    let deleted = call(&app.gateway, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let listed = get(&app.gateway, "/v1/knowledge/collections", Some(&token)).await;
    assert_eq!(listed.body, json!([]));
}

#[tokio::test]
async fn another_tenants_collections_and_documents_are_not_found() {
    let app = TestApp::new().await;
    let (_, alice) = signup(&app, "Alice Co", "owner@alice.test").await;
    let (_, bob) = signup(&app, "Bob Co", "owner@bob.test").await;
    let collection = create_collection(&app, &alice, "Private").await;
    let reply = upload(
        &app,
        &alice,
        &collection,
        "notes.txt",
        "text/plain",
        b"Alice's launch date is the ninth of March.",
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let doc = reply.body["document_id"].as_str().unwrap().to_owned();

    let listed = get(&app.gateway, "/v1/knowledge/collections", Some(&bob)).await;
    assert_eq!(listed.body, json!([]));
    let coll_path = format!("/v1/knowledge/collections/{collection}");
    let doc_path = format!("/v1/knowledge/documents/{doc}");
    for (method, path, body) in [
        (Method::GET, format!("{coll_path}/documents"), None),
        (
            Method::POST,
            format!("{coll_path}/search"),
            Some(json!({"query": "launch date"})),
        ),
        (Method::GET, doc_path.clone(), None),
        (Method::DELETE, doc_path.clone(), None),
        (Method::DELETE, coll_path.clone(), None),
    ] {
        let reply = call(&app.gateway, method.clone(), &path, Some(&bob), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "not_found");
    }
    let reply = upload(&app, &bob, &collection, "x.txt", "text/plain", b"intrusion").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    // Alice still has both.
    assert_eq!(
        get(&app.gateway, &doc_path, Some(&alice)).await.status,
        StatusCode::OK
    );
    assert_eq!(documents(&app, &alice, &collection).await.len(), 1);
}

#[tokio::test]
async fn a_viewer_can_read_but_not_upload() {
    let app = TestApp::new().await;
    let (slug, owner) = signup(&app, "Viewers", "owner@viewers.test").await;
    let collection = create_collection(&app, &owner, "Guides").await;
    let added = post(
        &app.auth,
        "/v1/users",
        Some(&owner),
        json!({"email": "v@viewers.test", "role": "viewer", "password": PASSWORD}),
    )
    .await;
    assert!(added.status.is_success(), "{}", added.body);
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "v@viewers.test", "password": PASSWORD, "tenant": slug}),
    )
    .await;
    let viewer = login.body["access_token"].as_str().unwrap();

    let listed = get(&app.gateway, "/v1/knowledge/collections", Some(viewer)).await;
    assert_eq!(listed.status, StatusCode::OK);
    let reply = upload(&app, viewer, &collection, "a.txt", "text/plain", b"hello").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let reply = post(
        &app.gateway,
        "/v1/knowledge/collections",
        Some(viewer),
        json!({"name": "Mine"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(documents(&app, &owner, &collection).await.is_empty());
}

#[tokio::test]
async fn refused_uploads_store_nothing() {
    let app = TestApp::with_config(|c| c.max_upload_bytes = 16 * 1024).await;
    let (_, token) = signup(&app, "Limits", "owner@limits.test").await;
    let collection = create_collection(&app, &token, "Small").await;

    // Over the limit, caught while streaming (the request is within limit + framing) …
    let reply = upload(
        &app,
        &token,
        &collection,
        "big.txt",
        "text/plain",
        &[b'a'; 20 * 1024],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["code"], "payload_too_large");
    // … and far over it, refused from Content-Length alone.
    let reply = upload(
        &app,
        &token,
        &collection,
        "huge.txt",
        "text/plain",
        &vec![b'a'; 1 << 20],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );

    let reply = upload(
        &app,
        &token,
        &collection,
        "logo.png",
        "image/png",
        b"\x89PNG\r\n",
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["code"], "unsupported_media_type");
    let reply = post(
        &app.gateway,
        &format!("/v1/knowledge/collections/{collection}/documents"),
        Some(&token),
        json!({"file": "not multipart"}),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        reply.body
    );

    assert!(documents(&app, &token, &collection).await.is_empty());
}

#[tokio::test]
async fn bytes_that_are_not_a_pdf_end_failed_with_a_reason() {
    let app = TestApp::new().await;
    let (_, token) = signup(&app, "Bad Input", "owner@badinput.test").await;
    let collection = create_collection(&app, &token, "Inbox").await;
    let reply = upload(
        &app,
        &token,
        &collection,
        "report.pdf",
        "application/pdf",
        b"Dear team, this is a plain letter, not a PDF at all.",
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let id = reply.body["document_id"].as_str().unwrap();
    let doc = settled(&app, &token, id).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert!(
        doc["error"].as_str().unwrap().contains("not a PDF"),
        "{doc}"
    );
    assert_eq!(doc["chunks"], 0);
}
