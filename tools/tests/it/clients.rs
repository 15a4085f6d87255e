//! Each platform client against a local server answering the platform's documented shapes;
//! the mocks match method, path, auth header form, query and body exactly, and `expect`
//! counts are verified when the server drops. One module per connector family plus one for
//! the shared transport; their common helpers live here.

mod advertising;
mod commerce;
mod crm;
mod publishing;
mod transport;

use std::collections::BTreeMap;

use wiremock::ResponseTemplate;

use brain_tools::META_GRAPH_VERSION;

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// A Graph API path under the version the connector calls.
fn graph_path(rest: &str) -> String {
    format!("/{META_GRAPH_VERSION}/{rest}")
}

fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
