//! The frame every console page shares (head, navigation, who is signed in), the
//! sign-in page and error pages. Templates are maud's: checked at compile time, every
//! interpolated value HTML-escaped.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::{CSRF_FIELD, Page, Signed};

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Rampart console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// The hidden CSRF field every form of a page carries.
pub(crate) fn csrf_field(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf); }
}

/// A page of the console: navigation to the pages `signed` may see, `current` marked,
/// then `body`.
pub(crate) fn page(signed: &Signed, current: Page, title: &str, body: Markup) -> Response {
    page_with_status(StatusCode::OK, signed, current, title, body)
}

/// [`page`] with another status (a refused change shows the page with its message).
pub(crate) fn page_with_status(
    status: StatusCode,
    signed: &Signed,
    current: Page,
    title: &str,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-csrf=(signed.csrf) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Rampart" }
                    nav aria-label="Console pages" {
                        ul {
                            @for page in Page::ALL {
                                @if signed.may(page) {
                                    li {
                                        @if page == current {
                                            a href=(page.path()) aria-current="page" { (page.title()) }
                                        } @else {
                                            a href=(page.path()) { (page.title()) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form.signout method="post" action="/console/logout" {
                        (csrf_field(signed))
                        span #principal { (signed.principal().id) }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

/// The sign-in page, with `error` when a sign-in failed; `next` is where to go after.
/// With `issuer`, a "Sign in with" link starts the OpenID Connect login.
pub(crate) fn sign_in(status: StatusCode, next: Option<&str>, error: Option<&str>, issuer: Option<&str>) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.signin {
                main #main {
                    h1 { "Rampart console" }
                    @if let Some(error) = error {
                        p.error role="alert" #sign-in-error { (error) }
                    }
                    form method="post" action="/console/login" {
                        @if let Some(next) = next {
                            input type="hidden" name="next" value=(next);
                        }
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="off" required
                            placeholder="rpt_…" autofocus;
                        button #sign-in type="submit" { "Sign in" }
                    }
                    @if let Some(issuer) = issuer {
                        p {
                            a.button #sign-in-oidc href={ "/console/login/oidc" @if let Some(next) = next { "?next=" (url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()) } } {
                                "Sign in with " (issuer)
                            }
                        }
                    }
                    p.hint {
                        "Create one with " code { "rampart token create --name NAME --role admin" }
                        ". The console shows what the token's roles grant."
                    }
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

/// A page that says what went wrong, with a way back.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(status.canonical_reason().unwrap_or("Error")))
            body.signin {
                main #main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error role="alert" { (message) }
                    p { a href="/console" { "Back to the console" } }
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

/// A notice above a page's content (`ok` green, otherwise red).
pub(crate) fn notice(ok: bool, message: &str) -> Markup {
    html! {
        @if ok { p.notice.ok role="status" { (message) } } @else { p.notice.error role="alert" { (message) } }
    }
}

/// JSON, pretty-printed, in a `<pre>`.
pub(crate) fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json { (text) } }
}
