//! The admin page (`GET /admin/`): server-rendered HTML (maud) with inline SVG charts, no
//! script. Per company: queue depths and oldest-due lateness over the last hour (samples
//! taken by [`spawn_sampler`] in the serving process), pause and resume; the queue's dead
//! calls with re-drive; webhook dead letters with re-drive; a call looked up by id with
//! its decision trail.
//!
//! Login: the admin token once, kept in an HttpOnly, SameSite=Strict cookie scoped to
//! `/admin`. Every form that changes something carries a CSRF token derived from the admin
//! token (unguessable without it) and is checked in constant time; SameSite=Strict already
//! keeps other sites' forms from sending the cookie.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ops::{CallView, CompanyStats, OpsError};
use super::{API_ACTOR, Admin, COOKIE};

/// How much history the charts show.
const WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// One sample of every company's queue.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: DateTime<Utc>,
    /// (company, calls waiting: scheduled + due + in flight, oldest due lateness in s)
    pub companies: Vec<(String, u64, f64)>,
}

/// The samples of the last hour.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    fn push(&self, sample: Sample) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back(sample);
        let Some(last) = s.back().map(|x| x.at) else {
            return;
        };
        while s.front().is_some_and(|x| last - x.at > WINDOW) {
            s.pop_front();
        }
    }

    fn snapshot(&self) -> Vec<Sample> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.iter().cloned().collect()
    }
}

fn sample_of(at: DateTime<Utc>, lines: &[CompanyStats]) -> Sample {
    Sample {
        at,
        companies: lines
            .iter()
            .map(|c| {
                (
                    c.company.clone(),
                    c.scheduled + c.due + c.in_flight,
                    c.oldest_due_lateness_secs,
                )
            })
            .collect(),
    }
}

/// Samples every company's queue every `every` for the charts, until the runtime stops.
pub fn spawn_sampler(admin: Arc<Admin>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(r) = admin.ops.stats(None).await {
                admin.history.push(sample_of(r.at, &r.companies));
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// The CSRF token of the page's forms: derived from the admin token's hash.
fn csrf(admin: &Admin) -> String {
    let d = Sha256::new()
        .chain_update(b"outdial-admin-csrf:")
        .chain_update(admin.token.digest)
        .finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn csrf_ok(admin: &Admin, given: &str) -> bool {
    bool::from(csrf(admin).as_bytes().ct_eq(given.as_bytes()))
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · outdial admin" }
                style { (STYLE) }
            }
            body { h1 { "outdial admin" } (body) }
        }
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:right}td:first-child,th:first-child{text-align:left}.bad{color:#b00;font-weight:600}\
form.inline{display:inline}svg{border:1px solid #ddd;margin-right:1em}.msg{padding:.5em;\
background:#eef}";

fn login_page(error: Option<&str>) -> Response {
    let page = layout(
        "log in",
        html! {
            @if let Some(e) = error { p.msg.bad { (e) } }
            form method="post" action="/admin/login" {
                label { "Admin token " input type="password" name="token" autofocus; }
                " " button type="submit" id="login" { "Log in" }
            }
        },
    );
    (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response()
}

/// Whether the request carries the admin token (cookie or bearer).
fn authed(admin: &Admin, request: &Request) -> bool {
    super::presented(request).is_some_and(|t| admin.token.matches(t))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    call: Option<String>,
    msg: Option<String>,
}

/// `GET /admin/`: the page, or the login form (401) without the token.
pub(super) async fn dashboard(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if !authed(&admin, &request) {
        return login_page(None);
    }
    let q: PageQuery = Query::try_from_uri(request.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    match render(&admin, &q).await {
        Ok(page) => Html(page.into_string()).into_response(),
        Err(e) => {
            let status = crate::ApiError::from(e).status;
            let page = layout(
                "error",
                html! { p.bad { "The page cannot be shown now: " (status) } },
            );
            (status, Html(page.into_string())).into_response()
        }
    }
}

async fn render(admin: &Admin, q: &PageQuery) -> Result<Markup, OpsError> {
    let stats = admin.ops.stats(None).await?;
    admin.history.push(sample_of(stats.at, &stats.companies));
    let history = admin.history.snapshot();
    let dead = admin.ops.list("dead", None, 50, None).await?;
    let mut webhook_dead = Vec::new();
    for c in admin.ops.store.list_companies().await? {
        let d = admin.ops.store.deliveries(c.id, "dead", 20).await?;
        if !d.is_empty() {
            webhook_dead.push((c.name.clone(), d));
        }
    }
    let call = match q.call.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(id) => Some((id.to_owned(), admin.ops.show(id).await)),
        None => None,
    };
    let token = csrf(admin);
    Ok(layout(
        "queues",
        html! {
            @if let Some(m) = &q.msg { p.msg id="msg" { (m) } }
            form method="post" action="/admin/logout" class="inline" {
                input type="hidden" name="csrf" value=(token);
                button type="submit" { "Log out" }
            }
            h2 { "Queues" }
            p { "As of " (stats.at.to_rfc3339()) }
            table id="companies" {
                tr { th { "company" } th { "scheduled" } th { "due" } th { "in flight" }
                     th { "deferred" } th { "retrying" } th { "reconcile" } th { "dead" }
                     th { "oldest due lateness" } th { "dials last min" } th { "live / cap" }
                     th { "paused" } th { "" } }
                @for c in &stats.companies {
                    tr id={ "company-" (c.company) } {
                        td { (c.company) }
                        td.scheduled { (c.scheduled) } td.due { (c.due) }
                        td.in-flight { (c.in_flight) } td { (c.deferred) } td { (c.retrying) }
                        td class=@if c.reconcile > 0 { "bad" } { (c.reconcile) }
                        td class=@if c.dead > 0 { "bad" } { (c.dead) }
                        td { (format!("{:.1} s", c.oldest_due_lateness_secs)) }
                        td { (c.dispatches_last_minute) }
                        td { (c.live_calls.map_or("-".to_owned(), |n| n.to_string())) " / " (c.live_call_cap) }
                        td.paused class=@if c.paused { "bad" } {
                            @if c.paused { "yes" } @else if !c.paused_task_types.is_empty() {
                                (c.paused_task_types.join(", "))
                            } @else { "no" }
                        }
                        td {
                            form method="post" action=(if c.paused { "/admin/ui/resume" } else { "/admin/ui/pause" }) class="inline" {
                                input type="hidden" name="csrf" value=(token);
                                input type="hidden" name="company" value=(c.company);
                                button type="submit" class=(if c.paused { "resume" } else { "pause" }) {
                                    (if c.paused { "Resume" } else { "Pause" })
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Last hour" }
            (chart("Calls waiting (scheduled + due + in flight)", &history, |x| x.1 as f64))
            (chart("Oldest due lateness (s)", &history, |x| x.2))
            h2 { "Look a call up" }
            form method="get" action="/admin/" {
                input type="text" name="call" size="40" placeholder="scheduled call id"
                    value=(q.call.clone().unwrap_or_default());
                " " button type="submit" id="lookup" { "Show" }
            }
            @if let Some((id, found)) = &call {
                @match found {
                    Ok(view) => (call_panel(view, &token)),
                    Err(e) => p.bad id="call-error" { (id) ": " (e) },
                }
            }
            h2 { "Dead calls" }
            @if dead.items.is_empty() { p { "None." } } @else {
                table id="dead" {
                    tr { th { "call" } th { "company" } th { "dead since" } th { "" } }
                    @for d in &dead.items {
                        tr {
                            td { a href={ "/admin/?call=" (d.call_id) } { (d.call_id) } }
                            td { (d.company) } td { (d.at.to_rfc3339()) }
                            td { (retry_form(&d.call_id, &token)) }
                        }
                    }
                }
            }
            h2 { "Webhook dead letters" }
            @if webhook_dead.is_empty() { p { "None." } } @else {
                table id="webhook-dead" {
                    tr { th { "company" } th { "event id" } th { "event" } th { "tries" } th { "last error" } th { "created" } }
                    @for (company, list) in &webhook_dead {
                        @for d in list {
                            tr { td { (company) } td { (d.id) } td { (d.event) } td { (d.attempts) }
                                 td { (d.last_error.clone().unwrap_or_default()) }
                                 td { (d.created_at.to_rfc3339()) } }
                        }
                        tr { td colspan="6" {
                            form method="post" action="/admin/ui/webhooks/redrive" class="inline" {
                                input type="hidden" name="csrf" value=(token);
                                input type="hidden" name="company" value=(company);
                                button type="submit" { "Re-drive " (company) "'s dead letters" }
                            }
                        } }
                    }
                }
            }
        },
    ))
}

fn retry_form(call: &str, token: &str) -> Markup {
    html! {
        form method="post" action="/admin/ui/retry" class="inline" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="call" value=(call);
            button type="submit" { "Re-drive" }
        }
    }
}

fn call_panel(v: &CallView, token: &str) -> Markup {
    let s = |k: &str| {
        v.call
            .get(k)
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    let trail = v
        .call
        .get("decisionTrail")
        .and_then(|t| t.as_array())
        .cloned()
        .unwrap_or_default();
    let text = |e: &serde_json::Value, k: &str| {
        e.get(k)
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    html! {
        div id="call" {
            h3 { "Call " (s("id")) }
            table {
                tr { td { "company" } td { (v.company) } }
                tr { td { "customer" } td { (s("customerId")) } }
                tr { td { "status" } td id="call-status" { (s("status")) } }
                tr { td { "due at" } td { (s("scheduledAt")) " (" (s("localTime")) ")" } }
                tr { td { "attempts" } td { (s("attempts")) } }
                tr { td { "queue" } td { (v.queue.as_ref().map_or("not in Redis".to_owned(), |q| text(q, "state"))) } }
            }
            @if v.queue.as_ref().is_some_and(|q| text(q, "state") == "dead") { (retry_form(&s("id"), token)) }
            h4 { "Decision trail" }
            table id="trail" {
                tr { th { "at" } th { "event" } th { "status" } th { "due" } th { "rules" } }
                @for e in &trail {
                    tr {
                        td { (text(e, "at")) } td.event { (text(e, "event")) } td { (text(e, "status")) }
                        td { (text(e, "dueAt")) }
                        td {
                            @for b in e.get("blocks").and_then(|b| b.as_array()).into_iter().flatten() {
                                (text(b, "rule")) " (" (text(b, "reason")) ") "
                            }
                        }
                    }
                }
            }
            h4 { "Attempts" }
            table {
                tr { th { "attempt" } th { "status" } th { "outcome" } th { "flags" } th { "started" } }
                @for a in &v.attempts {
                    tr { td { (a.attempt) } td { (a.status) } td { (a.outcome.clone().unwrap_or_default()) }
                         td { (a.flags.join(", ")) } td { (a.started_at.to_rfc3339()) } }
                }
            }
            h4 { "Webhook deliveries" }
            table {
                tr { th { "event" } th { "status" } th { "tries" } th { "last error" } }
                @for d in &v.webhook_deliveries {
                    tr { td { (d.event) } td { (d.status) } td { (d.attempts) } td { (d.last_error.clone().unwrap_or_default()) } }
                }
            }
            h4 { "Admin actions" }
            table {
                tr { th { "at" } th { "actor" } th { "action" } }
                @for a in &v.admin_actions {
                    tr { td { (text(a, "at")) } td { (text(a, "actor")) } td { (text(a, "action")) } }
                }
            }
        }
    }
}

/// A line chart of `value` per company over the samples (the ten companies with the
/// largest latest values), as inline SVG.
fn chart(title: &str, samples: &[Sample], value: impl Fn(&(String, u64, f64)) -> f64) -> Markup {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    const COLORS: [&str; 10] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    let mut names: Vec<(String, f64)> = samples
        .last()
        .map(|s| {
            s.companies
                .iter()
                .map(|c| (c.0.clone(), value(c)))
                .collect()
        })
        .unwrap_or_default();
    names.sort_by(|a, b| b.1.total_cmp(&a.1));
    names.truncate(COLORS.len());
    let (t0, t1) = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (a.at, b.at.max(a.at + chrono::Duration::seconds(1))),
        // No samples: no lines, so the axis is never read.
        _ => (
            chrono::DateTime::<Utc>::UNIX_EPOCH,
            chrono::DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1),
        ),
    };
    let max = samples
        .iter()
        .flat_map(|s| s.companies.iter().map(&value))
        .fold(1.0_f64, f64::max);
    let span = (t1 - t0).num_milliseconds() as f64;
    let lines: Vec<(String, &str, String)> = names
        .iter()
        .zip(COLORS)
        .map(|((name, _), color)| {
            let points: Vec<String> = samples
                .iter()
                .filter_map(|s| {
                    let c = s.companies.iter().find(|c| &c.0 == name)?;
                    let x = (s.at - t0).num_milliseconds() as f64 / span * W;
                    let y = H - value(c) / max * (H - 10.0);
                    Some(format!("{x:.1},{y:.1}"))
                })
                .collect();
            (name.clone(), color, points.join(" "))
        })
        .collect();
    html! {
        figure style="display:inline-block" {
            figcaption { (title) " (max " (format!("{max:.0}")) ")" }
            svg width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" {
                @for (_, color, points) in &lines {
                    polyline fill="none" stroke=(color) stroke-width="2" points=(points) {}
                }
            }
            div {
                @for (name, color, _) in &lines {
                    span style={ "color:" (color) } { "■ " (name) " " }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Login {
    token: String,
}

/// `POST /admin/login`: the token once; kept in the cookie.
pub(super) async fn login(State(admin): State<Arc<Admin>>, Form(form): Form<Login>) -> Response {
    if !admin.token.matches(form.token.trim()) {
        return login_page(Some("That is not the admin token."));
    }
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/admin",
        form.token.trim()
    );
    let mut r = Redirect::to("/admin/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
pub(super) struct Csrf {
    csrf: String,
}

/// `POST /admin/logout`.
pub(super) async fn logout(State(admin): State<Arc<Admin>>, Form(form): Form<Csrf>) -> Response {
    if !csrf_ok(&admin, &form.csrf) {
        return forbidden();
    }
    let mut r = Redirect::to("/admin/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "outdial_admin=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0",
        ),
    );
    r
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("<p>Bad or missing CSRF token.</p>".to_owned()),
    )
        .into_response()
}

/// Back to the page with a message.
fn back(msg: String) -> Response {
    let q: String = url_escape(&msg);
    Redirect::to(&format!("/admin/?msg={q}")).into_response()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub(super) struct CompanyForm {
    csrf: String,
    company: String,
    #[serde(rename = "taskType", default)]
    task_type: Option<String>,
}

async fn pause_or_resume(admin: &Admin, form: &CompanyForm, resume: bool) -> Response {
    if !csrf_ok(admin, &form.csrf) {
        return forbidden();
    }
    let t = form.task_type.as_deref().filter(|t| !t.is_empty());
    let r = if resume {
        admin.ops.resume(&form.company, t, API_ACTOR).await
    } else {
        admin.ops.pause(&form.company, t, API_ACTOR).await
    };
    match r {
        Ok(_) => back(format!(
            "{} {}",
            form.company,
            if resume { "resumed" } else { "paused" }
        )),
        Err(e) => back(e.to_string()),
    }
}

/// `POST /admin/ui/pause`.
pub(super) async fn ui_pause(State(a): State<Arc<Admin>>, Form(f): Form<CompanyForm>) -> Response {
    pause_or_resume(&a, &f, false).await
}

/// `POST /admin/ui/resume`.
pub(super) async fn ui_resume(State(a): State<Arc<Admin>>, Form(f): Form<CompanyForm>) -> Response {
    pause_or_resume(&a, &f, true).await
}

#[derive(Debug, Deserialize)]
pub(super) struct CallForm {
    csrf: String,
    call: String,
}

/// `POST /admin/ui/retry`: re-drive a dead call.
pub(super) async fn ui_retry(State(a): State<Arc<Admin>>, Form(f): Form<CallForm>) -> Response {
    if !csrf_ok(&a, &f.csrf) {
        return forbidden();
    }
    match a.ops.retry(&f.call, API_ACTOR).await {
        Ok(_) => back(format!("{} re-driven", f.call)),
        Err(e) => back(e.to_string()),
    }
}

/// `POST /admin/ui/webhooks/redrive`: re-drive a company's webhook dead letters.
pub(super) async fn ui_webhooks(
    State(a): State<Arc<Admin>>,
    Form(f): Form<CompanyForm>,
) -> Response {
    if !csrf_ok(&a, &f.csrf) {
        return forbidden();
    }
    match a.ops.redrive_webhooks(&f.company, API_ACTOR).await {
        Ok(d) => back(format!(
            "{} webhook events of {} re-driven",
            d["redriven"], f.company
        )),
        Err(e) => back(e.to_string()),
    }
}
