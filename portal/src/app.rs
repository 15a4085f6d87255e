//! The app: the HTML shell, the routes, the signed-in layout and the small components every
//! page uses.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Outlet, ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::model::{Me, Outcome};
use crate::pages;

/// The document around the app: the stylesheet, and the script that hydrates it.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="stylesheet" href="/style.css"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy: scripts only from the portal or inline with this
/// response's nonce (the hydration script; Leptos adds it), WebAssembly compiled, nothing
/// inline otherwise, requests and forms to the portal only, no framing.
#[cfg(feature = "ssr")]
fn content_security_policy() {
    use axum::http::{HeaderValue, header};

    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, once the page is hydrated: tests (and styles) can
    // tell a live page from a server-rendered one.
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    // Every page waits for its data on the server (`SsrMode::Async`), so it reads complete
    // without JavaScript; the hydrated app then takes over for the live parts.
    let ssr = SsrMode::Async;
    view! {
        <Title formatter=|text: String| format!("{text} · Brain")/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=ssr.clone()/>
                <ParentRoute path=path!("/dashboard") view=Layout ssr=ssr.clone()>
                    <Route path=path!("") view=pages::dashboard::DashboardPage ssr=ssr.clone()/>
                    <Route path=path!("agents") view=pages::agents::AgentsPage ssr=ssr.clone()/>
                    <Route path=path!("agents/:id") view=pages::agent::AgentPage ssr=ssr.clone()/>
                    <Route path=path!("crews") view=pages::crews::CrewsPage ssr=ssr.clone()/>
                    <Route path=path!("crews/:id") view=pages::crew::CrewPage ssr=ssr.clone()/>
                    <Route path=path!("chat/:agent") view=pages::chat::ChatPage ssr=ssr.clone()/>
                    <Route
                        path=path!("connectors")
                        view=pages::connectors::ConnectorsPage
                        ssr=ssr.clone()
                    />
                    <Route
                        path=path!("connectors/:id")
                        view=pages::connector::ConnectorPage
                        ssr=ssr.clone()
                    />
                    <Route
                        path=path!("integrations")
                        view=pages::integrations::IntegrationsPage
                        ssr=ssr.clone()
                    />
                    <Route path=path!("tasks") view=pages::tasks::TasksPage ssr=ssr.clone()/>
                    <Route path=path!("tasks/:id") view=pages::task::TaskPage ssr=ssr.clone()/>
                    <Route path=path!("audit") view=pages::audit::AuditPage ssr=ssr.clone()/>
                    <Route path=path!("health") view=pages::health::HealthPage ssr=ssr.clone()/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main class="centered">
            <h1>"Page not found"</h1>
            <p>
                <a href="/dashboard">"Back to the dashboard"</a>
            </p>
        </main>
    }
}

/// The signed-in user, with their role (from `GET /v1/auth/me`).
#[server]
pub async fn current_user() -> Result<Option<Me>, ServerFnError> {
    use crate::api::{Service, call, session};
    if session().is_none() {
        return Ok(None);
    }
    let me = call(Service::Auth, reqwest::Method::GET, "/v1/auth/me", None).await?;
    let text = |p: &str| {
        me.pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Some(Me {
        email: text("/user/email"),
        role: text("/role"),
        tenant: text("/tenant/slug"),
    }))
}

/// The signed-in frame: header, navigation, and the page.
#[component]
fn Layout() -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    // (path, label, whether it sits under the link before it)
    let links = [
        ("/dashboard", "Overview", false),
        ("/dashboard/agents", "Agents", false),
        ("/dashboard/crews", "Crews", true),
        ("/dashboard/connectors", "Connectors", false),
        ("/dashboard/integrations", "Integrations", false),
        ("/dashboard/tasks", "Tasks", false),
        ("/dashboard/audit", "Audit log", false),
        ("/dashboard/health", "Health", false),
    ];
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/dashboard" aria-label="Brain home">
                <span class="logo" aria-hidden="true">"◆"</span>
                "Brain"
            </a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(Some(me)) => {
                            view! {
                                <div class="user">
                                    <span class="who">
                                        <span class="email">{me.email.clone()}</span>
                                        <span class="role badge" data-role=me.role.clone()>
                                            {me.role.clone()}
                                        </span>
                                    </span>
                                    <form method="post" action="/logout">
                                        <CsrfField/>
                                        <button type="submit" class="link">
                                            "Sign out"
                                        </button>
                                    </form>
                                </div>
                            }
                                .into_any()
                        }
                        _ => view! { <a href="/login">"Sign in"</a> }.into_any(),
                    }
                })}
            </Suspense>
        </header>
        <div class="frame">
            <nav class="sidebar" aria-label="Main">
                <ul>
                    {links
                        .into_iter()
                        .map(|(href, label, sub)| {
                            view! {
                                <li>
                                    <A href=href exact=true attr:class=sub.then_some("sub")>
                                        {label}
                                    </A>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <main id="main" tabindex="-1">
                <Outlet/>
            </main>
        </div>
    }
}

/// The hidden CSRF field of a state-changing form.
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name="csrf" value=crate::session::csrf_token()/> }
}

/// The answer to a submitted form, announced to screen readers.
#[component]
pub fn OutcomeNote(outcome: Signal<Option<Result<Outcome, ServerFnError>>>) -> impl IntoView {
    view! {
        <div class="outcome" role="status" aria-live="polite">
            {move || match outcome.get() {
                Some(Ok(o)) if o.ok => {
                    view! { <p class="note ok">{o.message}</p> }.into_any()
                }
                Some(Ok(o)) if o.field.is_none() => {
                    view! { <p class="note error">{o.message}</p> }.into_any()
                }
                Some(Ok(_)) => {
                    view! { <p class="note error">"Please correct the marked field."</p> }
                        .into_any()
                }
                Some(Err(e)) => view! { <p class="note error">{error_text(&e)}</p> }.into_any(),
                None => ().into_any(),
            }}
        </div>
    }
}

/// A field's error, next to the field.
#[component]
pub fn FieldError(
    outcome: Signal<Option<Result<Outcome, ServerFnError>>>,
    field: &'static str,
) -> impl IntoView {
    let id = format!("{field}-error");
    view! {
        <p class="field-error" id=id role="alert">
            {move || {
                outcome.get().and_then(|o| o.ok()).and_then(|o| o.error_for(field))
            }}
        </p>
    }
}

/// A server function's error as a sentence.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// A failed page load.
#[component]
pub fn LoadError(error: ServerFnError) -> impl IntoView {
    view! {
        <div class="note error" role="alert">
            <p>{error_text(&error)}</p>
            <p>
                <a href="/login">"Sign in again"</a>
            </p>
        </div>
    }
}

/// A status as a coloured badge.
#[component]
pub fn Badge(status: String) -> impl IntoView {
    let class = format!("badge status-{}", status.replace(' ', "_"));
    let label = status.replace('_', " ");
    view! { <span class=class>{label}</span> }
}

/// The page title and its heading.
#[component]
pub fn PageHeader(
    title: String,
    #[prop(optional, into)] subtitle: Option<String>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <Title text=title.clone()/>
        <div class="page-header">
            <div>
                <h1>{title}</h1>
                {subtitle.map(|s| view! { <p class="muted">{s}</p> })}
            </div>
            {children.map(|c| view! { <div class="actions">{c()}</div> })}
        </div>
    }
}

/// A timestamp shortened for tables: `2026-05-01 14:03`.
pub fn short_time(at: &str) -> String {
    let at = at.replace('T', " ");
    at.chars().take(16).collect()
}
