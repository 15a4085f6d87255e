//! The clients that publish and send: WordPress posts, Mailchimp campaigns, Slack and
//! WhatsApp messages.

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::{graph_path, ok, q};
use crate::harness::{Harness, basic};

#[tokio::test]
async fn wordpress_reads_posts_and_creates_a_draft_with_basic_auth() {
    let h = Harness::new().await;
    let auth = basic("editor", "abcd efgh ijkl mnop");
    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/users/me"))
        .and(query_param("context", "edit"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!({"id": 1, "name": "editor"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "wordpress",
        &[
            ("site_url", &format!("{}/", h.uri())),
            ("username", "editor"),
            ("application_password", "abcd efgh ijkl mnop"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(query_param("per_page", "5"))
        .and(query_param("page", "1"))
        .and(query_param("search", "launch"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!([{"id": 7, "title": {"rendered": "Launch"}}])))
        .expect(1)
        .mount(&h.server)
        .await;
    let posts = h
        .service
        .resource(
            h.tenant,
            "wordpress",
            "posts",
            &q(&[("per_page", "5"), ("search", "launch")]),
        )
        .await
        .unwrap();
    assert_eq!(posts[0]["id"], 7);

    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts"))
        .and(header("authorization", auth.as_str()))
        .and(body_json(
            json!({"title": "Hello", "content": "<p>Hi</p>", "status": "draft"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": 99, "status": "draft", "link": "https://example.com/?p=99"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    let created = h
        .service
        .action(
            h.tenant,
            "wordpress",
            "create_post",
            json!({"title": "Hello", "content": "<p>Hi</p>"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(created["id"], 99);

    Mock::given(method("POST"))
        .and(path("/wp-json/wp/v2/posts/99"))
        .and(body_json(json!({"status": "publish"})))
        .respond_with(ok(json!({"id": 99, "status": "publish"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "wordpress",
            "update_post",
            json!({"id": 99, "status": "publish"}),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn mailchimp_uses_the_server_prefix_and_basic_auth() {
    let h = Harness::new().await;
    let auth = basic("brain", "0123456789abcdef-us21");
    Mock::given(method("GET"))
        .and(path("/3.0/ping"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ok(json!({"health_status": "Everything's Chimpy!"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "mailchimp",
        &[
            ("api_key", "0123456789abcdef-us21"),
            ("server_prefix", "us21"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path("/3.0/lists/abc123/members"))
        .and(query_param("count", "10"))
        .and(query_param("offset", "0"))
        .respond_with(ok(
            json!({"members": [{"email_address": "a@example.com"}], "total_items": 1}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(
            h.tenant,
            "mailchimp",
            "members",
            &q(&[("list_id", "abc123")]),
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/3.0/lists/abc123/members"))
        .and(header("authorization", auth.as_str()))
        .and(body_json(json!({"email_address": "urist@example.com", "status": "subscribed", "merge_fields": {"FNAME": "Urist"}})))
        .respond_with(ok(json!({"id": "852aaa9532cb36adfb5e9fef7a4206a9", "email_address": "urist@example.com", "status": "subscribed"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(h.tenant, "mailchimp", "add_member", json!({"list_id": "abc123", "email_address": "urist@example.com", "merge_fields": {"FNAME": "Urist"}}), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn slack_posts_messages_and_maps_ok_false() {
    let h = Harness::new().await;
    let bearer = "Bearer xoxb-1234-5678-abcdef";
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .and(header("authorization", bearer))
        .respond_with(ok(
            json!({"ok": true, "team": "Acme", "user": "brainbot", "bot_id": "B1"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect("slack", &[("bot_token", "xoxb-1234-5678-abcdef")])
        .await;

    Mock::given(method("GET"))
        .and(path("/conversations.list"))
        .and(query_param("types", "public_channel,private_channel"))
        .and(query_param("exclude_archived", "true"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"ok": true, "channels": [{"id": "C012AB3CD", "name": "general"}], "response_metadata": {"next_cursor": ""}})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "slack", "channels", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(header("authorization", bearer))
        .and(body_json(
            json!({"channel": "C012AB3CD", "text": "Launch is live"}),
        ))
        .respond_with(ok(
            json!({"ok": true, "channel": "C012AB3CD", "ts": "1503435956.000247"}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C012AB3CD", "text": "Launch is live"}),
            None,
        )
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "C404", "text": "x"})))
        .respond_with(ok(json!({"ok": false, "error": "channel_not_found"})))
        .expect(1)
        .mount(&h.server)
        .await;
    let err = h
        .service
        .action(
            h.tenant,
            "slack",
            "post_message",
            json!({"channel": "C404", "text": "x"}),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("channel_not_found"), "{err}");
}

#[tokio::test]
async fn whatsapp_sends_templates_through_the_cloud_api() {
    let h = Harness::new().await;
    let bearer = "Bearer EAAG-wa-token";
    Mock::given(method("GET"))
        .and(path(graph_path("106540352242922")))
        .and(query_param("fields", "display_phone_number,verified_name"))
        .and(header("authorization", bearer))
        .respond_with(ok(json!({"display_phone_number": "+1 555-0100", "verified_name": "Acme", "id": "106540352242922"})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.connect(
        "whatsapp",
        &[
            ("access_token", "EAAG-wa-token"),
            ("phone_number_id", "106540352242922"),
            ("business_account_id", "102290129340398"),
        ],
    )
    .await;

    Mock::given(method("GET"))
        .and(path(graph_path("102290129340398/message_templates")))
        .and(query_param("fields", "name,status,language,category"))
        .respond_with(ok(
            json!({"data": [{"name": "order_update", "status": "APPROVED", "language": "en_US"}]}),
        ))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .resource(h.tenant, "whatsapp", "templates", &q(&[]))
        .await
        .unwrap();

    Mock::given(method("POST"))
        .and(path(graph_path("106540352242922/messages")))
        .and(header("authorization", bearer))
        .and(body_json(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"}},
        })))
        .respond_with(ok(json!({"messaging_product": "whatsapp", "contacts": [{"input": "16505551234", "wa_id": "16505551234"}], "messages": [{"id": "wamid.HBgL"}]})))
        .expect(1)
        .mount(&h.server)
        .await;
    h.service
        .action(
            h.tenant,
            "whatsapp",
            "send_template",
            json!({"to": "+16505551234", "template": "order_update", "language": "en_US"}),
            None,
        )
        .await
        .unwrap();
}
