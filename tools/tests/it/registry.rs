//! The registry as the API returns it: 13 connectors whose parameter schemas are valid JSON
//! Schemas (checked against the meta-schema by the `jsonschema` crate) and compile.

use serde_json::Value;

#[test]
fn thirteen_connectors_with_valid_json_schemas() {
    let json = serde_json::to_value(brain_tools::registry::connectors()).unwrap();
    let list = json.as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "wordpress",
            "fluentcrm",
            "woocommerce",
            "zoho-crm",
            "hubspot",
            "google-ads",
            "google-analytics",
            "meta-ads",
            "shopify",
            "stripe",
            "mailchimp",
            "slack",
            "whatsapp"
        ]
    );
    for c in list {
        for key in ["id", "name", "category", "description"] {
            assert!(
                c[key].as_str().is_some_and(|s| !s.is_empty()),
                "{} lacks {key}",
                c["id"]
            );
        }
        assert!(!c["resources"].as_array().unwrap().is_empty());
        for f in c["auth_schema"].as_array().unwrap() {
            assert!(["string", "secret", "select", "url"].contains(&f["kind"].as_str().unwrap()));
            assert!(f["required"].is_boolean() && f["field"].is_string() && f["label"].is_string());
            if f["kind"] == "select" {
                assert!(!f["options"].as_array().unwrap().is_empty());
            }
        }
        for a in c["actions"].as_array().unwrap() {
            assert!(a["side_effect"].is_boolean() && a["description"].is_string());
            let schema: &Value = &a["parameters"];
            jsonschema::meta::validate(schema)
                .unwrap_or_else(|e| panic!("{}.{}: {e}", c["id"], a["name"]));
            jsonschema::validator_for(schema).unwrap();
            assert_eq!(schema["type"], "object");
        }
    }
    let zoho = &list[3]["auth_schema"];
    let dc = zoho
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "data_centre")
        .unwrap();
    assert_eq!(
        dc["options"],
        serde_json::json!(["com", "eu", "in", "au", "cn"])
    );
}
