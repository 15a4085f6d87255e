//! SSO end to end against a local OpenID Connect issuer started by the test: discovery
//! document, JWKS, and a token endpoint that checks PKCE and signs real RS256 ID tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::routing::{get, post as post_route};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{TestApp, get as get_req, post};

/// RSA keys made once with `openssl genrsa 2048` and stored as PKCS#1 DER; the modulus below
/// is the issuer key's, base64url (from `openssl rsa -noout -modulus`).
const ISSUER_KEY: &[u8] = include_bytes!("fixtures/oidc_issuer.der");
const ROGUE_KEY: &[u8] = include_bytes!("fixtures/oidc_rogue.der");
const ISSUER_N: &str = "twbYENSLHUveos2YdvifbJcK-6fe6HgBmsQeokF8hkAU2-lY-isvGWaBc0oG3Q-69JAPfjCZN8SqpkLCQC2_w8ykspKIklOKzfnz_zZZaLfNUZ-qNOeKPmyCU1kGpspLWWHejBCE2ahRZATPHO15C2hTbcfkSosda-wL5bXfGoA9ktWUY0x2iQ49Qepwef9_EH6rkY_plPb9P8gVbFA-fVNWTs_V4L097TSUVcYNsiOTr0XuH7Y5yBJ9g3wIPRLhCRzrhuOrb9XxMv2k0HjHVNGqWlZoMlVQCimBCWxDIhzDZnu0E9LaUkFaTdCYPz2Vh7UCaDaqGrQmwdJa1i5pZw";
const CLIENT_ID: &str = "brain-test-client";

/// What the fake issuer will put into the next ID token.
#[derive(Default)]
struct Script {
    code: String,
    challenge: String,
    nonce: String,
    email: String,
    /// `None`: the claim is left out.
    email_verified: Option<bool>,
    /// `sub` of the ID token; empty: derived from the e-mail.
    subject: String,
    rogue_key: bool,
    pkce_checked: bool,
}

#[derive(Clone)]
struct Issuer {
    base: String,
    script: Arc<Mutex<Script>>,
}

async fn discovery(State(issuer): State<Issuer>) -> Json<Value> {
    let base = &issuer.base;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks() -> Json<Value> {
    Json(json!({"keys": [{
        "kty": "RSA", "kid": "issuer-key", "use": "sig", "alg": "RS256", "n": ISSUER_N, "e": "AQAB",
    }]}))
}

async fn token(
    State(issuer): State<Issuer>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let mut script = issuer.script.lock().unwrap();
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if form.get("code") != Some(&script.code) || challenge != script.challenge {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        ));
    }
    script.pkce_checked = true;
    let now = chrono::Utc::now().timestamp();
    let subject = if script.subject.is_empty() {
        format!("sub-{}", script.email)
    } else {
        script.subject.clone()
    };
    let mut claims = json!({
        "iss": issuer.base, "sub": subject, "aud": CLIENT_ID,
        "iat": now, "exp": now + 300, "nonce": script.nonce, "email": script.email,
    });
    if let Some(verified) = script.email_verified {
        claims["email_verified"] = json!(verified);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("issuer-key".to_owned());
    let key = EncodingKey::from_rsa_der(if script.rogue_key {
        ROGUE_KEY
    } else {
        ISSUER_KEY
    });
    let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    Ok(Json(json!({
        "access_token": "provider-access-token", "token_type": "Bearer", "expires_in": 3600,
        "id_token": id_token,
    })))
}

async fn start_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Issuer {
        base: format!("http://{}", listener.local_addr().unwrap()),
        script: Arc::default(),
    };
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post_route(token))
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    issuer
}

/// A started login: the query of the provider URL Brain redirected to, and the browser key
/// it set as a cookie.
struct Started {
    query: HashMap<String, String>,
    browser: String,
}

impl std::ops::Index<&str> for Started {
    type Output = String;

    fn index(&self, key: &str) -> &String {
        &self.query[key]
    }
}

async fn start(app: &TestApp) -> Started {
    let reply = get_req(&app.auth, "/v1/auth/sso/google/start", None).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let location = reply.headers["location"].to_str().unwrap();
    let url = reqwest::Url::parse(location).unwrap();
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let browser = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("brain_sso="))
        .expect("the start sets the browser cookie")
        .to_owned();
    Started {
        query: url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        browser,
    }
}

fn script(issuer: &Issuer, started: &Started, nonce: &str, email: &str, rogue: bool) {
    *issuer.script.lock().unwrap() = Script {
        code: "the-code".to_owned(),
        challenge: started["code_challenge"].clone(),
        nonce: nonce.to_owned(),
        email: email.to_owned(),
        email_verified: Some(true),
        subject: String::new(),
        rogue_key: rogue,
        pkce_checked: false,
    };
}

/// The provider's redirect back, in the browser that started the login.
async fn callback(app: &TestApp, started: &Started) -> crate::harness::Reply {
    callback_in(app, &started["state"], Some(&started.browser)).await
}

/// The provider's redirect back, in a browser holding `browser` (or no SSO cookie).
async fn callback_in(app: &TestApp, state: &str, browser: Option<&str>) -> crate::harness::Reply {
    let mut request = axum::http::Request::get(format!(
        "/v1/auth/sso/google/callback?code=the-code&state={state}"
    ));
    if let Some(browser) = browser {
        request = request.header("cookie", format!("theme=dark; brain_sso={browser}"));
    }
    crate::harness::send(&app.auth, request.body(axum::body::Body::empty()).unwrap()).await
}

async fn sso_app(issuer: &Issuer) -> TestApp {
    let base = issuer.base.clone();
    TestApp::with_config(|c| {
        c.sso_google_issuer = base;
        c.sso_google_client_id = Some(CLIENT_ID.to_owned());
        c.sso_google_client_secret = Some(brain_gateway::config::Secret::new("client-secret"));
        c.public_auth_url = "http://brain.test:8009".to_owned();
    })
    .await
}

/// Signs up a tenant; returns its id.
async fn signup(app: &TestApp, name: &str, email: &str) -> String {
    let signup = post(
        &app.auth,
        "/v1/auth/signup",
        None,
        json!({"tenant_name": name, "email": email, "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.body);
    signup.body["tenant"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sso_logs_in_through_a_local_oidc_issuer_and_rejects_forgeries() {
    let issuer = start_issuer().await;
    let app = sso_app(&issuer).await;
    // A tenant whose domain admits SSO users as editors.
    let tenant = signup(&app, "SSO Co", "owner@sso.test").await;
    sqlx::query("UPDATE tenants SET sso_domain = 'sso.test', sso_default_role = 'editor'")
        .execute(&app.db.owner)
        .await
        .unwrap();

    let query = start(&app).await;
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["redirect_uri"],
        "http://brain.test:8009/v1/auth/sso/google/callback"
    );
    assert!(query["scope"].split(' ').any(|s| s == "openid"));
    assert!(query["state"].len() >= 16 && query["nonce"].len() >= 16);

    // First SSO login of a new e-mail in a mapped domain creates the user.
    script(
        &issuer,
        &query,
        &query["nonce"],
        "new.person@sso.test",
        false,
    );
    let done = callback(&app, &query).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let spent = done.headers["set-cookie"].to_str().unwrap();
    assert!(
        spent.starts_with("brain_sso=;") && spent.contains("Max-Age=0"),
        "{spent}"
    );
    assert!(
        issuer.script.lock().unwrap().pkce_checked,
        "the token endpoint saw a valid verifier"
    );
    let access = done.body["access_token"].as_str().unwrap();
    let me = get_req(&app.auth, "/v1/auth/me", Some(access)).await;
    assert_eq!(me.body["user"]["email"], "new.person@sso.test");
    assert_eq!(me.body["role"], "editor");
    assert_eq!(me.body["tenant"]["id"], tenant.as_str());
    assert_eq!(me.body["user"]["sso_only"], true);

    // A state works once; an unknown state never.
    let replay = callback(&app, &query).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.body["error"]["code"], "invalid_state");
    let forged = callback_in(&app, "made-up-state", Some(&query.browser)).await;
    assert_eq!(forged.body["error"]["code"], "invalid_state");

    // An ID token carrying another nonce is refused.
    let query = start(&app).await;
    script(
        &issuer,
        &query,
        "someone-elses-nonce",
        "new.person@sso.test",
        false,
    );
    let wrong_nonce = callback(&app, &query).await;
    assert_eq!(
        wrong_nonce.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        wrong_nonce.body
    );
    assert_eq!(wrong_nonce.body["error"]["code"], "invalid_id_token");

    // An ID token signed by a key the issuer does not publish is refused.
    let query = start(&app).await;
    script(
        &issuer,
        &query,
        &query["nonce"],
        "new.person@sso.test",
        true,
    );
    let rogue = callback(&app, &query).await;
    assert_eq!(rogue.status, StatusCode::UNAUTHORIZED, "{}", rogue.body);
    assert_eq!(rogue.body["error"]["code"], "invalid_id_token");

    // A domain no tenant claims gets no account.
    let query = start(&app).await;
    script(
        &issuer,
        &query,
        &query["nonce"],
        "stranger@elsewhere.test",
        false,
    );
    let stranger = callback(&app, &query).await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);

    // The existing user signs in again without a second account.
    let query = start(&app).await;
    script(
        &issuer,
        &query,
        &query["nonce"],
        "new.person@sso.test",
        false,
    );
    assert_eq!(callback(&app, &query).await.status, StatusCode::OK);
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'new.person@sso.test'")
            .fetch_one(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(users, 1);

    let unknown = get_req(&app.auth, "/v1/auth/sso/github/start", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

/// Signs in with a password; the reply's body holds the tokens.
async fn password_login(app: &TestApp, email: &str) -> crate::harness::Reply {
    post(
        &app.auth,
        "/v1/auth/login",
        None,
        json!({"email": email, "password": "correct horse battery"}),
    )
    .await
}

#[tokio::test]
async fn sso_defeats_account_pre_registration_and_login_csrf() {
    let issuer = start_issuer().await;
    let app = sso_app(&issuer).await;
    let corp = signup(&app, "Corp", "admin@corp.test").await;
    sqlx::query("UPDATE tenants SET sso_domain = 'corp.test', sso_default_role = 'editor'")
        .execute(&app.db.owner)
        .await
        .unwrap();
    // The attacker registers the victim's addresses (no one verifies them) in tenants of
    // their own, one in the victim's domain and one in a domain no tenant claims.
    let trap = signup(&app, "Trap", "victim@corp.test").await;
    signup(&app, "Trap Two", "victim@mail.test").await;

    // The victim signs in with SSO: the attacker's account is neither used nor linked; the
    // victim lands in the tenant that claims the domain.
    let started = start(&app).await;
    script(
        &issuer,
        &started,
        &started["nonce"],
        "victim@corp.test",
        false,
    );
    let done = callback(&app, &started).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let me = get_req(&app.auth, "/v1/auth/me", done.body["access_token"].as_str()).await;
    assert_eq!(me.body["tenant"]["id"], corp.as_str());
    assert_eq!(me.body["role"], "editor");
    let links: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, subject FROM user_identities")
            .fetch_all(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].0.to_string(), corp);
    assert_eq!(links[0].1, "sub-victim@corp.test");
    // The attacker's password still opens only the attacker's own tenant.
    let attacker = password_login(&app, "victim@corp.test").await;
    assert_eq!(attacker.status, StatusCode::OK, "{}", attacker.body);
    let theirs = get_req(
        &app.auth,
        "/v1/auth/me",
        attacker.body["access_token"].as_str(),
    )
    .await;
    assert_eq!(theirs.body["tenant"]["id"], trap.as_str());

    // An address in no claimed domain: the attacker's look-alike account is not handed over.
    let started = start(&app).await;
    script(
        &issuer,
        &started,
        &started["nonce"],
        "victim@mail.test",
        false,
    );
    let refused = callback(&app, &started).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "no_tenant");
    assert!(refused.body.get("access_token").is_none());

    // A provider that does not say the address is verified (left out, or false) gets nothing.
    for verified in [None, Some(false)] {
        let started = start(&app).await;
        script(&issuer, &started, &started["nonce"], "new@corp.test", false);
        issuer.script.lock().unwrap().email_verified = verified;
        let unverified = callback(&app, &started).await;
        assert_eq!(unverified.status, StatusCode::UNAUTHORIZED, "{verified:?}");
        assert_eq!(unverified.body["error"]["code"], "invalid_id_token");
    }

    // Login CSRF: the attacker starts a login in their browser and sends the victim the
    // callback link. Without the attacker's cookie — none, or the victim's own — it fails,
    // and the state is spent.
    let attackers = start(&app).await;
    let victims = start(&app).await;
    script(
        &issuer,
        &attackers,
        &attackers["nonce"],
        "admin2@corp.test",
        false,
    );
    for browser in [None, Some(victims.browser.as_str())] {
        let csrf = callback_in(&app, &attackers["state"], browser).await;
        assert_eq!(csrf.status, StatusCode::BAD_REQUEST, "{browser:?}");
        assert_eq!(csrf.body["error"]["code"], "invalid_state");
        assert!(csrf.body.get("access_token").is_none());
    }
    assert_eq!(
        callback(&app, &attackers).await.body["error"]["code"],
        "invalid_state",
        "a state presented in the wrong browser cannot be used again"
    );

    // Nothing was created for the refused logins; the identity, not the e-mail, finds the
    // victim next time, even after the provider changes the address it reports.
    let started = start(&app).await;
    script(
        &issuer,
        &started,
        &started["nonce"],
        "victim.renamed@corp.test",
        false,
    );
    issuer.script.lock().unwrap().subject = "sub-victim@corp.test".to_owned();
    let again = callback(&app, &started).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let me_again = get_req(
        &app.auth,
        "/v1/auth/me",
        again.body["access_token"].as_str(),
    )
    .await;
    assert_eq!(me_again.body["user"]["id"], me.body["user"]["id"]);
    let users: Vec<String> = sqlx::query_scalar("SELECT email FROM users ORDER BY email")
        .fetch_all(&app.db.owner)
        .await
        .unwrap();
    assert_eq!(
        users,
        [
            "admin@corp.test",
            "victim@corp.test",
            "victim@corp.test",
            "victim@mail.test"
        ]
    );
    // The service still answers.
    assert_eq!(
        password_login(&app, "admin@corp.test").await.status,
        StatusCode::OK
    );
}
