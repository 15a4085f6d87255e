//! The auth service and the gateway's tenant context, attacked from every side.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use brain_auth::TenantId;
use brain_auth::token::{Claims, TokenIssuer, TokenSettings};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{TestApp, call, get, post};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct Account {
    pub tenant: String,
    pub slug: String,
    pub access: String,
    pub refresh: String,
}

pub(crate) async fn signup(app: &TestApp, tenant_name: &str, email: &str) -> Account {
    let reply = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": tenant_name, "email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    Account {
        tenant: reply.body["tenant"]["id"].as_str().unwrap().to_owned(),
        slug: reply.body["tenant"]["slug"].as_str().unwrap().to_owned(),
        access: reply.body["access_token"].as_str().unwrap().to_owned(),
        refresh: reply.body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn add_user(
    app: &TestApp,
    owner: &Account,
    email: &str,
    role: &str,
) -> (String, String) {
    let reply = post(
        &app.auth,
        "/v1/users",
        Some(&owner.access),
        json!({"email": email, "role": role, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": email, "password": PASSWORD, "tenant": owner.slug}),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    (id, login.body["access_token"].as_str().unwrap().to_owned())
}

pub(crate) fn issuer(app: &TestApp, issuer: &str) -> TokenIssuer {
    let keys = app.app.auth.as_ref().unwrap().keys.clone();
    let settings = TokenSettings {
        issuer: issuer.into(),
        audience: "brain".into(),
        ..Default::default()
    };
    TokenIssuer::new(keys, settings)
}

#[tokio::test]
async fn signup_login_me_and_clear_validation_errors() {
    let app = TestApp::new().await;
    let account = signup(&app, "Acme Marketing", "Owner@Acme.test").await;
    assert_eq!(account.slug, "acme-marketing");

    let me = get(&app.auth, "/v1/auth/me", Some(&account.access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["tenant"]["slug"], "acme-marketing");
    assert_eq!(me.body["user"]["email"], "owner@acme.test");
    assert_eq!(me.body["role"], "owner");

    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "owner@acme.test", "password": PASSWORD}),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    let header = login.body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let jwks = get(&app.auth, "/.well-known/jwks.json", None).await;
    assert!(
        jwks.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"])
    );

    for (body, field) in [
        (
            json!({"tenant_name": "X", "email": "x@x.test", "password": "short"}),
            "password",
        ),
        (
            json!({"tenant_name": "X", "email": "x@x.test", "password": ""}),
            "password",
        ),
        (
            json!({"tenant_name": "X", "email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"tenant_name": "", "email": "x@x.test", "password": PASSWORD}),
            "tenant_name",
        ),
    ] {
        let reply = post(&app.auth, "/v1/auth/signup", None, body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.body
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field)
        );
    }
    let unknown_field = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": "X", "admin": true}),
    )
    .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);

    let wrong = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "owner@acme.test", "password": "wrong password!!"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn forged_and_stale_tokens_are_rejected() {
    let app = TestApp::new().await;
    let account = signup(&app, "Forge", "owner@forge.test").await;
    let ok = get(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&account.access),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    let parts: Vec<&str> = account.access.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // alg: none, no signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // A tampered tenant with the original signature.
    let mut tampered = claims.clone();
    tampered["tid"] = json!(Uuid::now_v7());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered.to_string()),
        parts[2]
    );
    // A signature from a key that is not ours, under our kid.
    let wrong_signature = {
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 0xff;
        format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig))
    };
    // Our key, another issuer.
    let foreign = issuer(&app, "https://evil.example")
        .issue(
            TenantId(account.tenant.parse().unwrap()),
            Uuid::now_v7(),
            brain_auth::Role::Owner,
        )
        .unwrap();
    // Our key and issuer, expired an hour ago.
    let now = chrono::Utc::now().timestamp();
    let expired = issuer(&app, "brain")
        .sign(&Claims {
            sub: claims["sub"].as_str().unwrap().parse().unwrap(),
            tid: TenantId(account.tenant.parse().unwrap()),
            role: brain_auth::Role::Owner,
            iat: now - 7200,
            exp: now - 3600,
            jti: Uuid::now_v7(),
            iss: "brain".into(),
            aud: "brain".into(),
        })
        .unwrap();

    for (name, token) in [
        ("alg none", alg_none.as_str()),
        ("tampered tid", tampered.as_str()),
        ("wrong signature", wrong_signature.as_str()),
        ("another issuer", foreign.as_str()),
        ("expired", expired.as_str()),
        ("garbage", "not.a.token"),
        (
            "unknown api key",
            "bk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        for router in [&app.gateway, &app.auth] {
            let path = if std::ptr::eq(router, &app.gateway) {
                "/v1/integrations/api-keys"
            } else {
                "/v1/auth/me"
            };
            let reply = get(router, path, Some(token)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{name} on {path}: {}",
                reply.body
            );
            assert_eq!(reply.body["error"]["code"], "unauthorized");
        }
    }
    let missing = get(&app.gateway, "/v1/integrations/api-keys", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_other() {
    let app = TestApp::new().await;
    let a = signup(&app, "Tenant A", "owner@a.test").await;
    let b = signup(&app, "Tenant B", "owner@b.test").await;
    let (b_user, _) = add_user(&app, &b, "editor@b.test", "editor").await;
    let b_key = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&b.access),
        json!({"name": "b-key", "scopes": ["chat"]}),
    )
    .await;
    let b_key_id = b_key.body["id"].as_str().unwrap().to_owned();

    let users = get(&app.auth, "/v1/users", Some(&a.access)).await;
    let emails: Vec<&str> = users.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["owner@a.test"]);
    let keys = get(&app.gateway, "/v1/integrations/api-keys", Some(&a.access)).await;
    assert_eq!(keys.body["api_keys"], json!([]));

    // Existence is never leaked: another tenant's ids are simply not found.
    let patch = call(
        &app.auth,
        Method::PATCH,
        &format!("/v1/users/{b_user}"),
        Some(&a.access),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND, "{}", patch.body);
    let delete = call(
        &app.auth,
        Method::DELETE,
        &format!("/v1/users/{b_user}"),
        Some(&a.access),
        None,
    )
    .await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
    let revoke = call(
        &app.gateway,
        Method::DELETE,
        &format!("/v1/integrations/api-keys/{b_key_id}"),
        Some(&a.access),
        None,
    )
    .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);

    // B's data is intact.
    let b_users = get(&app.auth, "/v1/users", Some(&b.access)).await;
    assert_eq!(b_users.body["users"].as_array().unwrap().len(), 2);
    let b_keys = get(&app.gateway, "/v1/integrations/api-keys", Some(&b.access)).await;
    assert!(b_keys.body["api_keys"][0]["revoked_at"].is_null());
}

#[tokio::test]
async fn roles_and_scopes_are_enforced() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Roles", "owner@roles.test").await;
    let (_, viewer) = add_user(&app, &owner, "viewer@roles.test", "viewer").await;
    let (admin_id, admin) = add_user(&app, &owner, "admin@roles.test", "admin").await;

    let write = post(
        &app.auth,
        "/v1/users",
        Some(&viewer),
        json!({"email": "x@roles.test", "role": "viewer"}),
    )
    .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(write.body["error"]["code"], "forbidden");
    let key = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&viewer),
        json!({"name": "k", "scopes": ["chat"]}),
    )
    .await;
    assert_eq!(key.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app.auth, "/v1/users", Some(&viewer)).await.status,
        StatusCode::OK
    );

    // An admin may not mint owners.
    let owner_by_admin = post(
        &app.auth,
        "/v1/users",
        Some(&admin),
        json!({"email": "o2@roles.test", "role": "owner"}),
    )
    .await;
    assert_eq!(owner_by_admin.status, StatusCode::FORBIDDEN);

    // The last owner can be neither demoted nor deleted; with a second owner it can.
    let me = get(&app.auth, "/v1/auth/me", Some(&owner.access)).await;
    let owner_id = me.body["user"]["id"].as_str().unwrap().to_owned();
    let demote = call(
        &app.auth,
        Method::PATCH,
        &format!("/v1/users/{owner_id}"),
        Some(&owner.access),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.body);
    assert_eq!(demote.body["error"]["code"], "last_owner");
    let delete = call(
        &app.auth,
        Method::DELETE,
        &format!("/v1/users/{owner_id}"),
        Some(&owner.access),
        None,
    )
    .await;
    assert_eq!(delete.body["error"]["code"], "last_owner");
    let promote = call(
        &app.auth,
        Method::PATCH,
        &format!("/v1/users/{admin_id}"),
        Some(&owner.access),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.body);
    let demote = call(
        &app.auth,
        Method::PATCH,
        &format!("/v1/users/{owner_id}"),
        Some(&owner.access),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(demote.status, StatusCode::OK);

    // Role changes are audited.
    let changes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'user.role_change'")
            .fetch_one(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(changes, 2);
}

#[tokio::test]
async fn only_owners_disable_owners_and_the_last_enabled_owner_stays() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Owners", "owner@owners.test").await;
    let (_, admin) = add_user(&app, &owner, "admin@owners.test", "admin").await;
    let (second_id, _) = add_user(&app, &owner, "second@owners.test", "owner").await;
    let me = get(&app.auth, "/v1/auth/me", Some(&owner.access)).await;
    let owner_id = me.body["user"]["id"].as_str().unwrap().to_owned();
    let patch = |token: String, id: String, body: Value| {
        let app = &app;
        async move {
            call(
                &app.auth,
                Method::PATCH,
                &format!("/v1/users/{id}"),
                Some(&token),
                Some(body),
            )
            .await
        }
    };

    // An admin may disable neither owner.
    for id in [&owner_id, &second_id] {
        let reply = patch(admin.clone(), id.clone(), json!({"disabled": true})).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    }
    // An owner may disable another owner…
    let reply = patch(
        owner.access.clone(),
        second_id.clone(),
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // …but then is the last enabled owner: not disabled, demoted or deleted.
    let reply = patch(
        owner.access.clone(),
        owner_id.clone(),
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(reply.body["error"]["code"], "last_owner", "{}", reply.body);
    let reply = patch(
        owner.access.clone(),
        owner_id.clone(),
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(reply.body["error"]["code"], "last_owner", "{}", reply.body);
    let reply = call(
        &app.auth,
        Method::DELETE,
        &format!("/v1/users/{owner_id}"),
        Some(&owner.access),
        None,
    )
    .await;
    assert_eq!(reply.body["error"]["code"], "last_owner", "{}", reply.body);
    // The owner still administers the tenant.
    let users = get(&app.auth, "/v1/users", Some(&owner.access)).await;
    assert_eq!(users.status, StatusCode::OK);
}

/// Demoting or disabling a user ends the access tokens they hold at once (not when the
/// tokens expire); a refresh then carries the new role, or is refused for a disabled user.
#[tokio::test]
async fn demoted_and_disabled_users_lose_their_access_tokens_at_once() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Revoke", "owner@revoke.test").await;
    let (id, _) = add_user(&app, &owner, "ed@revoke.test", "admin").await;
    let login = post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": "ed@revoke.test", "password": PASSWORD, "tenant": owner.slug}),
    )
    .await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let agents = get(&app.gateway, "/v1/agents", Some(&access)).await;
    assert_eq!(agents.status, StatusCode::OK, "{}", agents.body);
    let user = format!("/v1/users/{id}");
    let patch = |body: Value| {
        call(
            &app.auth,
            Method::PATCH,
            &user,
            Some(&owner.access),
            Some(body),
        )
    };

    let demoted = patch(json!({"role": "editor"})).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
    let me = get(&app.auth, "/v1/auth/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    let agents = get(&app.gateway, "/v1/agents", Some(&access)).await;
    assert_eq!(agents.status, StatusCode::UNAUTHORIZED, "{}", agents.body);
    let refreshed = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    let refresh = refreshed.body["refresh_token"].as_str().unwrap().to_owned();
    let me = get(&app.auth, "/v1/auth/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["user"]["role"], "editor", "{}", me.body);

    let disabled = patch(json!({"disabled": true})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    let me = get(&app.auth, "/v1/auth/me", Some(&access)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    let agents = get(&app.gateway, "/v1/agents", Some(&access)).await;
    assert_eq!(agents.status, StatusCode::UNAUTHORIZED, "{}", agents.body);
    let refreshed = post(
        &app.auth,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refreshed.body
    );
    // Nobody else is signed out.
    let agents = get(&app.gateway, "/v1/agents", Some(&owner.access)).await;
    assert_eq!(agents.status, StatusCode::OK, "{}", agents.body);
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let app = TestApp::new().await;
    let owner = signup(&app, "Keys", "owner@keys.test").await;
    let created = post(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&owner.access),
        json!({"name": "ci", "scopes": ["agents:read", "chat"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("bk_") && key.len() > 40);
    let id = created.body["id"].as_str().unwrap().to_owned();

    let me = get(&app.auth, "/v1/auth/me", Some(&key)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["actor"]["kind"], "api_key");
    assert_eq!(me.body["scopes"], json!(["agents:read", "chat"]));
    // Scopes, not roles: this key cannot manage keys.
    let list_with_key = get(&app.gateway, "/v1/integrations/api-keys", Some(&key)).await;
    assert_eq!(list_with_key.status, StatusCode::FORBIDDEN);

    let listed = get(
        &app.gateway,
        "/v1/integrations/api-keys",
        Some(&owner.access),
    )
    .await;
    let listed_key = &listed.body["api_keys"][0];
    assert!(listed_key.get("key").is_none());
    assert!(
        !listed.body.to_string().contains(&key[3..]),
        "the key is never listed"
    );
    assert!(
        listed_key["prefix"]
            .as_str()
            .unwrap()
            .starts_with(&key[..9])
    );
    assert!(!listed_key["last_used_at"].is_null(), "use is recorded");

    for (body, what) in [
        (json!({"name": "x", "scopes": ["root"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "", "scopes": ["chat"]}), "name"),
        (
            json!({"name": "x", "scopes": ["chat"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
    ] {
        let reply = post(
            &app.gateway,
            "/v1/integrations/api-keys",
            Some(&owner.access),
            body,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            reply.body
        );
    }

    let revoke = call(
        &app.gateway,
        Method::DELETE,
        &format!("/v1/integrations/api-keys/{id}"),
        Some(&owner.access),
        None,
    )
    .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    let after = get(&app.auth, "/v1/auth/me", Some(&key)).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "a revoked key stops working at once"
    );
}
