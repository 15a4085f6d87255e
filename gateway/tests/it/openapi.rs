//! The API describes itself: `GET /openapi.json` lists every route the gateway and the auth
//! service serve (and nothing they do not), with the whole error-code catalogue, and `/docs`
//! renders it in headless Chromium from assets Brain serves itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::http::{Method, StatusCode};
use brain_migrations::testing::{TestDb, setting};
use serde_json::{Value, json};

use crate::harness::{TestApp, call, get, signup};
use crate::process::{BrainProcess, node_script, workspace};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// Every (method, path) the document lists, and whether the auth service serves it.
fn operations(doc: &Value) -> Vec<(String, String, bool)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let on_auth = item["servers"][0]["description"] == "the auth service";
        for method in METHODS {
            if item.get(*method).is_some() {
                ops.push(((*method).to_owned(), path.clone(), on_auth));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_served_and_every_error_code() {
    let app = TestApp::new().await;
    let reply = get(&app.gateway, "/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let doc = reply.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    assert!(ops.len() > 60, "only {} operations documented", ops.len());

    // Each documented operation is routed: probed with an owner's token and placeholder path
    // parameters, it reaches a handler (whatever that answers), never the fallback or a 405.
    let owner = signup(&app, "Docs").await;
    for (method, path, on_auth) in &ops {
        let concrete = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let router = if *on_auth { &app.auth } else { &app.gateway };
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = call(router, method.clone(), &concrete, Some(&owner.token), None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.starts_with("no route for"),
            "{method} {path} is documented but not routed"
        );
        let operation = &doc["paths"][path][method.as_str().to_lowercase()];
        check_operation(path, operation);
    }

    // Every route registered in the sources is documented (routes registered through
    // `utoipa_axum::routes!` are by construction; this catches plain `.route(…)` calls).
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for (file, path) in routed_paths(&["gateway/src", "auth/src"]) {
        assert!(
            documented.contains(path.as_str()),
            "{path} (routed in {file}) is missing from /openapi.json"
        );
    }

    // The error body lists the whole catalogue; every reference resolves.
    let codes: Vec<&str> = brain_auth::Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"],
        json!(codes)
    );
    check_references(&doc, &doc);
}

/// What every operation carries: a tag, a summary, a success answer and the error answer.
fn check_operation(path: &str, operation: &Value) {
    assert!(
        operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
        "{path}: no tag"
    );
    assert!(
        operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "{path}: no summary"
    );
    let responses = operation["responses"].as_object().expect("responses");
    assert!(
        responses
            .keys()
            .any(|s| s.starts_with('2') || s.starts_with('3')),
        "{path}: no success response"
    );
    assert_eq!(
        responses["default"]["$ref"], "#/components/responses/Error",
        "{path}: no error response"
    );
}

fn check_references(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                let pointer = reference.strip_prefix('#').expect("a local reference");
                assert!(
                    doc.pointer(pointer).is_some(),
                    "{reference} does not resolve"
                );
            }
            map.values().for_each(|v| check_references(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| check_references(doc, v)),
        _ => {}
    }
}

/// `(file, path)` of every `.route("<path>"` in the `.rs` files under `dirs`.
fn routed_paths(dirs: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for dir in dirs {
        for file in rust_files(&workspace().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, _) in text.match_indices(".route(") {
                let rest = text[i + ".route(".len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    let path = &literal[..literal.find('"').unwrap()];
                    found.push((file.display().to_string(), path.to_owned()));
                }
            }
        }
    }
    assert!(found.len() >= 3, "the scan found no routes: {found:?}");
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The document validates against the OpenAPI 3.1 schema (`@apidevtools/swagger-parser`), and
/// Swagger UI at `/docs` renders every operation in headless Chromium while every request
/// outside Brain is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_the_document_without_network_access() {
    let site_root = setting("BRAIN_PORTAL_SITE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/portal-site"));
    let modules = setting("BRAIN_PORTAL_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".brain/node/node_modules"));
    let chromium = setting("BRAIN_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".to_owned());
    assert!(
        site_root.join("docs/swagger-ui-bundle.js").is_file(),
        "Swagger UI is missing: run `cargo xtask portal` (or `cargo xtask test`)"
    );
    let db = TestDb::new().await.unwrap();
    let brain = BrainProcess::start(
        &db,
        &["serve", "gateway"],
        &[("BRAIN_PORTAL_SITE_ROOT", site_root.display().to_string())],
    )
    .await;
    let params = json!({ "gateway": brain.gateway, "chromium": chromium, "modules": modules });
    let stdout = node_script("gateway/tests/e2e/docs.cjs", "DOCS_E2E", &params, &brain).await;
    let rendered: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RENDERED "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the script's RENDERED line");
    let doc: Value = reqwest::get(format!("{}/openapi.json", brain.gateway))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rendered, operations(&doc).len(), "{stdout}");
}
