//! `/login`: e-mail and password (through the auth service), and SSO buttons for the
//! providers the auth service has configured.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::app::{CsrfField, error_text};
use crate::model::Outcome;

/// Signs in: the tokens become HttpOnly cookies, then on to `next`.
#[server(endpoint = "login")]
pub async fn login(
    csrf: String,
    email: String,
    password: String,
    #[server(default)] tenant: String,
    #[server(default)] next: String,
) -> Result<Outcome, ServerFnError> {
    use crate::api::{Service, call_with, check_csrf, forwarded_for, portal};
    check_csrf(&csrf)?;
    let mut body = serde_json::json!({ "email": email.trim(), "password": password });
    if !tenant.trim().is_empty() {
        body["tenant"] = serde_json::json!(tenant.trim());
    }
    let answer = call_with(
        Service::Auth,
        reqwest::Method::POST,
        "/v1/auth/login",
        Some(body),
        forwarded_for().as_slice(),
    )
    .await;
    let accepts_html = use_context::<axum::http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    });
    match answer {
        Ok(tokens) => {
            let portal = portal()?;
            let response = expect_context::<leptos_axum::ResponseOptions>();
            let secure = portal.config.public_origin.starts_with("https://");
            for cookie in crate::server::session_cookies(&tokens, secure) {
                if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
                    response.append_header(axum::http::header::SET_COOKIE, value);
                }
            }
            // Only a path of this site: never an open redirect.
            let next = if next.starts_with("/dashboard") && !next.starts_with("//") {
                next
            } else {
                "/dashboard".to_owned()
            };
            leptos_axum::redirect(&next);
            Ok(Outcome::ok("Signed in"))
        }
        Err(e) => {
            let message = match e.code.as_str() {
                "invalid_credentials" => "Wrong e-mail or password.".to_owned(),
                "tenant_required" => {
                    "This e-mail belongs to several workspaces: name the workspace.".to_owned()
                }
                _ => e.message.clone(),
            };
            if accepts_html {
                // A form posted without JavaScript: show the error on the login page.
                leptos_axum::redirect(&format!("/login?error={}", crate::api::encode(&message)));
            }
            Ok(Outcome {
                ok: false,
                message,
                field: None,
                secret: None,
            })
        }
    }
}

/// The SSO providers the auth service offers.
#[server]
pub async fn sso_providers() -> Result<Vec<String>, ServerFnError> {
    Ok(crate::api::portal()?.config.sso_providers.clone())
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let action = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let providers = Resource::new(|| (), |_| sso_providers());
    let error = move || {
        let from_action = action.value().get().and_then(|r| match r {
            Ok(o) if !o.ok => Some(o.message),
            Err(e) => Some(error_text(&e)),
            _ => None,
        });
        from_action.or_else(|| query.read().get("error"))
    };
    view! {
        <Title text="Sign in"/>
        <main class="login" id="main">
            <div class="login-card">
                <p class="brand large">
                    <span class="logo" aria-hidden="true">"◆"</span>
                    "Brain"
                </p>
                <h1>"Sign in"</h1>
                <ActionForm action=action>
                    <CsrfField/>
                    <input type="hidden" name="next" value=next/>
                    <div class="field">
                        <label for="email">"E-mail"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input
                            id="password"
                            name="password"
                            type="password"
                            autocomplete="current-password"
                            required
                        />
                    </div>
                    <details class="field">
                        <summary>"Several workspaces?"</summary>
                        <label for="tenant">"Workspace (slug)"</label>
                        <input id="tenant" name="tenant" type="text" autocomplete="organization"/>
                    </details>
                    <div role="alert" class="login-error">
                        {move || error().map(|e| view! { <p class="note error">{e}</p> })}
                    </div>
                    <button type="submit" class="primary wide" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let providers = providers.await.unwrap_or_default();
                        (!providers.is_empty())
                            .then(|| {
                                view! {
                                    <div class="sso">
                                        <p class="muted">"or"</p>
                                        {providers
                                            .into_iter()
                                            .map(|p| {
                                                let label = match p.as_str() {
                                                    "google" => "Sign in with Google".to_owned(),
                                                    "microsoft" => "Sign in with Microsoft".to_owned(),
                                                    other => format!("Sign in with {other}"),
                                                };
                                                view! {
                                                    <a class="button wide" href=format!("/login/sso/{p}")>
                                                        {label}
                                                    </a>
                                                }
                                            })
                                            .collect_view()}
                                    </div>
                                }
                            })
                    })}
                </Suspense>
            </div>
        </main>
    }
}
