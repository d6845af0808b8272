//! HTTP tests of every route of `recon-companion serve` through the router
//! (tower oneshot): auth, CSRF, validation, the review queue, the API, runs and
//! rollback, the kill switch, health and metrics.
//!
//! One file over 500 lines on purpose: one scenario suite over one router built
//! by one fixture (`server_support`), a test per route family; split, each part
//! would repeat the same set-up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use axum::body::Body;
use axum::http::{header, StatusCode};
use server_support::*;

/// Every route behind auth, with a method.
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/peertube/review"),
    ("POST", "/peertube/review/aaaa0000000000000000000000000000/assign"),
    ("GET", "/peertube/item/aaaa0000000000000000000000000000"),
    ("GET", "/runs"),
    ("GET", "/runs/x"),
    ("GET", "/runs/x/rollback"),
    ("POST", "/runs/x/rollback"),
    ("POST", "/push/pause"),
    ("POST", "/push/resume"),
    ("POST", "/logout"),
    ("GET", "/metrics"),
    ("GET", "/api/stats"),
    ("GET", "/api/items"),
    ("GET", "/api/items/aaaa0000000000000000000000000000"),
    ("POST", "/api/items/aaaa0000000000000000000000000000/assign"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/x"),
    ("POST", "/api/runs/x/rollback"),
    ("GET", "/api/push"),
    ("POST", "/api/push/pause"),
    ("POST", "/api/push/resume"),
];

fn setup(n_tied: usize) -> (Data, std::sync::Arc<FakePusher>, companion::server::state::AppState) {
    let d = data(n_tied, 3);
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p.clone());
    (d, p, st)
}

#[tokio::test]
async fn health_is_open_and_everything_else_needs_auth() {
    let (_d, _p, st) = setup(3);
    let mut c = Client::new(&st);
    let r = c.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "alive");
    // Not ready: the worker never ran and PeerTube was never checked; each state is in the body.
    let r = c.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let j = r.json();
    assert_eq!(j["ready"], false);
    assert_eq!(j["db"]["ok"], true, "{j}");
    assert_eq!(j["migration"]["ok"], true, "{j}");
    assert_eq!(j["worker"]["ok"], false, "{j}");
    assert_eq!(j["peertube"]["ok"], false, "{j}");

    for (method, path) in PROTECTED {
        let r = c.send(c.req(method, path).body(Body::empty()).unwrap()).await;
        if path.starts_with("/api/") || *path == "/metrics" {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", r.body);
            assert!(r.json()["error"].as_str().unwrap().contains("login required"), "{method} {path}");
        } else {
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{method} {path}");
            assert!(r.location().starts_with("/login?next="), "{method} {path}: {}", r.location());
        }
    }
    // Unknown routes are 404, not a login redirect leak of anything.
    assert_eq!(c.get("/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ready_after_a_tick_and_a_peertube_check() {
    let (_d, _p, st) = setup(2);
    companion::server::worker::tick(&st).unwrap();
    st.worker.lock().unwrap().last_tick = Some(std::time::Instant::now());
    companion::server::worker::check_peertube_now(&st);
    let mut c = Client::new(&st);
    let r = c.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["peertube"]["ok"], true);
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_and_limits_failures() {
    let (d, _p, _) = setup(1);
    let mut cfg = d.config();
    cfg.server.cookie_secure = true;
    let st = state(&d, cfg, FakePusher::new(&d.db));
    let mut c = Client::new(&st);

    // The login form's own CSRF token is required.
    let r = c.post_form("/login", &[("password", PASSWORD), ("csrf", "forged")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = c.login("wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong password"));
    for _ in 0..4 {
        assert_eq!(c.login("wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    // Sixth try within the minute: refused without checking, even with the right password.
    let r = c.login(PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.get(header::RETRY_AFTER).is_some());

    let st = state(
        &d,
        {
            let mut c = d.config();
            c.server.cookie_secure = true;
            c
        },
        FakePusher::new(&d.db),
    );
    let mut c = Client::new(&st);
    let r = c.login(PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/peertube/review");
    let cookie = r.set_cookies().into_iter().find(|c| c.starts_with("recon_session=")).expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(c.csrf.is_some());
    assert_eq!(c.get("/peertube/review").await.status, StatusCode::OK);
    // The login page sends a logged-in user on.
    assert_eq!(c.get("/login").await.status, StatusCode::SEE_OTHER);
    // Log out (CSRF-protected) and the session is gone.
    let csrf = c.csrf.clone().unwrap();
    assert_eq!(c.post_form("/logout", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(c.post_form("/logout", &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/peertube/review").await.status, StatusCode::SEE_OTHER);
    // A login with no password configured is refused plainly.
    let mut cfg = d.config();
    cfg.server.password_hash = None;
    let st = state(&d, cfg, FakePusher::new(&d.db));
    let mut c = Client::new(&st);
    assert_eq!(c.login(PASSWORD).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn next_after_login_stays_on_this_site() {
    let (_d, _p, st) = setup(1);
    let mut c = Client::new(&st);
    let form = c.get("/login?next=//evil.example/").await;
    let token = csrf_in(&form.body).unwrap();
    let r = c.post_form("/login", &[("password", PASSWORD), ("csrf", &token), ("next", "https://evil.example/")]).await;
    assert_eq!(r.location(), "/peertube/review");
}

#[tokio::test]
async fn review_page_lists_filters_and_pages() {
    let (d, _p, st) = setup(230);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let r = c.get("/peertube/review").await;
    assert_eq!(r.status, StatusCode::OK);
    let b = &r.body;
    assert!(b.contains("230 item(s)"), "count shown");
    assert!(b.contains(&format!("data-hash=\"{}\"", d.tied[0])));
    assert!(!b.contains(&format!("data-hash=\"{}\"", d.tied[60])), "page 1 holds 50");
    // minijinja escapes '/' in attributes (&#x2f;), which browsers read back as '/'.
    let link = format!("https://stream.echo6.co/w/{}", uuid_of(&d.tied[0])).replace('/', "&#x2f;");
    assert!(b.contains(&link), "PeerTube link");
    assert!(b.contains("Tied video 0"));
    assert!(b.contains("<svg"), "bar chart");
    assert!(b.contains("id=\"card-manual\">230<"), "status card");
    // Top domains with counts: domains 0 and 1 with 3 each, domain 5 with 1.
    assert!(b.contains(&format!("{} (3)", companion::server::http_error::escape_html(label(0)))), "top domains");
    // Beyond 200 items: page 5 of 50-item pages holds the last 30.
    let r = c.get("/peertube/review?page=5").await;
    assert!(r.body.contains("page 5 of 5"));
    assert!(r.body.contains(&format!("data-hash=\"{}\"", d.tied[229])));
    let r = c.get("/peertube/review?per_page=200&page=2").await;
    assert_eq!(r.body.matches("data-hash=").count(), 30);
    // Filters.
    let r = c.get("/peertube/review?channel=Beta&per_page=500").await;
    assert_eq!(r.body.matches("data-hash=").count(), 115);
    let url = format!("/peertube/review?per_page=500&domain={}", enc_q(label(2)));
    let r = c.get(&url).await;
    assert_eq!(r.body.matches("data-hash=").count(), 115, "domain 2 is tied in odd videos");
    let r = c.get(&format!("/peertube/review?per_page=500&channel=Alpha&domain={}", enc_q(label(2)))).await;
    assert!(r.body.contains("id=\"queue-empty\""));
    let r = c.get("/peertube/review?domain=Music").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown domain"));
}

fn enc_q(s: &str) -> String {
    form_body(&[("x", s)]).trim_start_matches("x=").to_string()
}

#[tokio::test]
async fn assign_from_the_dashboard_validates_pushes_and_leaves_the_queue() {
    let (d, p, st) = setup(4);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let csrf = c.csrf.clone().unwrap();
    let target = d.tied[1].clone();
    let path = format!("/peertube/review/{target}/assign");

    // CSRF refused: none, wrong, or another session's.
    assert_eq!(c.post_form(&path, &[("domain", label(2))]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(c.post_form(&path, &[("domain", label(2)), ("csrf", "0000")]).await.status, StatusCode::FORBIDDEN);
    let mut other = Client::new(&st);
    other.login(PASSWORD).await;
    assert_ne!(other.csrf, c.csrf);
    let r = c.post_form(&path, &[("domain", label(2)), ("csrf", other.csrf.as_deref().unwrap())]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(d.columns(&target).1.as_deref(), Some("tied_manual"), "nothing changed");

    // Bad hash, bad domain → 400 with a message; unknown hash → 404.
    let r = c.post_form("/peertube/review/..%2F..%2Fetc/assign", &[("domain", label(2)), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("invalid document hash"), "{}", r.body);
    let r = c.post_form(&path, &[("domain", "Music"), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown domain"), "{}", r.body);
    let r = c.post_form(&format!("/peertube/review/{}/assign", hash_of(0xcccc_0000, 1)), &[("domain", label(2)), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(p.hashes().is_empty());

    // The real thing: manual_assigned, pushed at once, gone from the queue.
    let r = c.post_form(&path, &[("domain", label(2)), ("csrf", &csrf), ("back", "/peertube/review?page=1")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/peertube/review?page=1");
    let (dom, status, pushed) = d.columns(&target);
    assert_eq!((dom.as_deref(), status.as_deref()), (Some(label(2)), Some("manual_assigned")));
    assert!(pushed.is_some());
    assert_eq!(p.hashes(), vec![target.clone()]);
    let page = c.get("/peertube/review").await;
    assert!(!page.body.contains(&format!("data-hash=\"{target}\"")), "row left the queue");
    assert!(page.body.contains("assigned and pushed"), "notice shown");
    assert!(page.body.contains("3 item(s)"));

    // A failed push shows a warning and stays pending (queued for retry).
    *p.fail.lock().unwrap() = Some("PeerTube answered 503".into());
    let t2 = d.tied[2].clone();
    let r = c.post_form(&format!("/peertube/review/{t2}/assign"), &[("domain", label(3)), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = c.get("/peertube/review").await;
    assert!(page.body.contains("push to PeerTube failed (PeerTube answered 503)"), "{}", page.body);
    let (_, status, pushed) = d.columns(&t2);
    assert_eq!(status.as_deref(), Some("manual_assigned"));
    assert!(pushed.is_none(), "stays pending");
    assert!(st.retry.lock().unwrap().entries.contains_key(&t2));

    // The review page's own form: every row's select (d-HASH) is posted, the
    // clicked row's URL decides which one counts.
    let page = c.get("/peertube/review").await;
    assert!(page.body.matches("data-hash=").count() >= 2);
    assert_eq!(page.body.matches("name=\"csrf\"").count(), 3, "the assign form, pause and logout: not one per row");
    let t3 = d.tied[3].clone();
    let other_field = format!("d-{}", d.tied[0]);
    let own_field = format!("d-{t3}");
    let r = c.post_form(&format!("/peertube/review/{t3}/assign"), &[("csrf", &csrf), (&other_field, label(12)), (&own_field, label(13))]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(d.columns(&t3).0.as_deref(), Some(label(13)));
    // Domain by slug and by id work too.
    *p.fail.lock().unwrap() = None;
    let d0 = shared_constants::DOMAINS[7];
    let r = c.post_form(&format!("/peertube/review/{}/assign", d.tied[3]), &[("domain", d0.slug), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(d.columns(&d.tied[3]).0.as_deref(), Some(d0.label));
}

#[tokio::test]
async fn caller_tokens_are_checked_per_caller() {
    let (d, p, st) = setup(3);
    let mut c = Client::new(&st);
    let ok = c.send(caller(c.req("GET", "/api/stats"), CALLER, CALLER_TOKEN).body(Body::empty()).unwrap()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.json()["manual_review"], 3);
    for (name, token) in [(CALLER, "wrong"), (CALLER, OTHER_TOKEN), ("nobody", CALLER_TOKEN), (OTHER_CALLER, CALLER_TOKEN)] {
        let r = c.send(caller(c.req("GET", "/api/stats"), name, token).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}/{token}");
    }
    // Header without a bearer token.
    let r = c.send(c.req("GET", "/api/stats").header("x-caller-service", CALLER).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Machine clients carry no cookie, so no CSRF token is needed.
    let body = serde_json::json!({ "domain": label(6) }).to_string();
    let r = c
        .send(
            caller(c.req("POST", &format!("/api/items/{}/assign", d.tied[0])), OTHER_CALLER, OTHER_TOKEN)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "manual_assigned");
    assert_eq!(j["push"]["state"], "pushed");
    assert_eq!(j["category_id"], shared_constants::DOMAINS[6].id);
    assert_eq!(p.hashes(), vec![d.tied[0].clone()]);
    // The run names the caller.
    let run_id = j["run_id"].as_str().unwrap().to_string();
    let r = c.send(caller(c.req("GET", &format!("/api/runs/{run_id}")), CALLER, CALLER_TOKEN).body(Body::empty()).unwrap()).await;
    assert_eq!(r.json()["run"]["args"]["by"], "caller:admin");
}

#[tokio::test]
async fn api_items_assign_and_errors() {
    let (d, _p, st) = setup(7);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let csrf = c.csrf.clone().unwrap();
    let r = c.get("/api/items?per_page=3&page=3").await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["page"]["total"], 7);
    assert_eq!(j["page"]["pages"], 3);
    assert_eq!(j["page"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(j["page"]["items"][0]["hash"], d.tied[6]);
    let item = &j["page"]["items"][0];
    assert_eq!(item["top_domains"][0]["count"], 3);
    assert!(item["video_url"].as_str().unwrap().ends_with(&uuid_of(&d.tied[6])));
    let r = c.get("/api/items?channel=Alpha").await;
    assert_eq!(r.json()["page"]["total"], 4);
    let r = c.get(&format!("/api/items?domain={}", shared_constants::DOMAINS[3].id)).await;
    assert_eq!(r.json()["page"]["total"], 3, "domain by id");
    assert_eq!(c.get("/api/items?domain=nope").await.status, StatusCode::BAD_REQUEST);

    // Explain.
    let r = c.get(&format!("/api/items/{}", d.tied[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["hash"], d.tied[0]);
    assert_eq!(r.json()["total_valid"], 7);
    let r = c.get("/api/items/not-a-hash").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("invalid document hash"));
    assert_eq!(c.get(&format!("/api/items/{}", hash_of(0xdddd_0000, 0))).await.status, StatusCode::NOT_FOUND);

    // Assign through the API with a session: the CSRF header is required.
    let path = format!("/api/items/{}/assign", d.tied[1]);
    assert_eq!(c.post_json(&path, serde_json::json!({"domain": label(1)}), None).await.status, StatusCode::FORBIDDEN);
    let r = c.post_json(&path, serde_json::json!({"domain": "Cooking"}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("unknown domain"));
    let r = c.post_json(&path, serde_json::json!({"domain": true}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.post_json(&path, serde_json::json!({"nodomain": 1}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // "xyz" was the bad hash here; by the hash rule it is well-formed (absent: 404).
    let r = c.post_json("/api/items/xy.z/assign", serde_json::json!({"domain": label(1)}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.post_json("/api/items/xyz/assign", serde_json::json!({"domain": label(1)}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.post_json(&format!("/api/items/{}/assign", hash_of(0xdddd_0000, 0)), serde_json::json!({"domain": label(1)}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.post_json(&path, serde_json::json!({"domain": shared_constants::DOMAINS[1].id}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["previous_status"], "tied_manual");
    assert_eq!(c.get("/api/items").await.json()["page"]["total"], 6);

    // A CLI run holding the writer lock: refused with the holder's name, 409.
    let lock = companion::journal::lock::WriterLock::acquire(&d.db, "recon-companion backfill (test)").unwrap();
    let r = c.post_json(&format!("/api/items/{}/assign", d.tied[2]), serde_json::json!({"domain": label(1)}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("backfill (test)"));
    drop(lock);
}

#[tokio::test]
async fn item_page_explains_the_video() {
    let (d, _p, st) = setup(2);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let r = c.get(&format!("/peertube/item/{}", d.tied[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Tied video 0"));
    assert!(r.body.contains("window_0001.json"));
    assert!(r.body.contains("tied_manual"));
    // "zzz" was the bad hash here; by the hash rule it is well-formed (absent: 404).
    assert_eq!(c.get("/peertube/item/zz-z").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.get("/peertube/item/zzz").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get(&format!("/peertube/item/{}", hash_of(0xeeee_0000, 0))).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn runs_page_and_rollback_with_confirmation() {
    let (d, _p, st) = setup(3);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let csrf = c.csrf.clone().unwrap();
    let t = d.tied[0].clone();
    let r = c.post_json(&format!("/api/items/{t}/assign"), serde_json::json!({"domain": label(9)}), Some(&csrf)).await;
    let run_id = r.json()["run_id"].as_str().unwrap().to_string();

    let r = c.get("/runs").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&run_id) && r.body.contains("manual-assign"));
    assert!(r.body.contains(&format!("/runs/{run_id}/rollback")), "rollback button");
    let r = c.get("/api/runs").await;
    assert_eq!(r.json()["runs"][0]["run_id"], run_id);
    let r = c.get(&format!("/runs/{run_id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&t));
    assert_eq!(c.get("/runs/20990101T000000Z-nothing-0000").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/api/runs/20990101T000000Z-nothing-0000").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/api/runs/bad%20id").await.status, StatusCode::BAD_REQUEST);

    // The confirmation page is a dry run: nothing changes. The push changed the
    // row after the run, so it shows the conflict and offers force.
    let r = c.get(&format!("/runs/{run_id}/rollback")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Confirm rollback"));
    assert!(r.body.contains("1 row(s) restored (with force)"), "{}", r.body);
    assert!(r.body.contains("changed again since the run") && r.body.contains("name=\"force\""), "{}", r.body);
    assert_eq!(d.columns(&t).1.as_deref(), Some("manual_assigned"));
    // Without the confirmation field, or without CSRF: refused.
    assert_eq!(c.post_form(&format!("/runs/{run_id}/rollback"), &[("csrf", &csrf)]).await.status, StatusCode::CONFLICT);
    assert_eq!(c.post_form(&format!("/runs/{run_id}/rollback"), &[("confirm", "yes")]).await.status, StatusCode::FORBIDDEN);
    // Without force the conflict refuses the whole rollback.
    let r = c.post_form(&format!("/runs/{run_id}/rollback"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("changed since the run"));
    assert_eq!(d.columns(&t).1.as_deref(), Some("manual_assigned"));
    let r = c.post_form(&format!("/runs/{run_id}/rollback"), &[("csrf", &csrf), ("confirm", "yes"), ("force", "yes")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Rolled back"));
    assert_eq!(d.columns(&t).1.as_deref(), Some("tied_manual"), "restored");
    let page = c.get("/peertube/review").await;
    assert!(page.body.contains(&format!("data-hash=\"{t}\"")), "back in the queue");

    // The API, with pushes paused (so nothing changes the row after the run):
    // a dry run, then the real one; unknown → 404.
    assert_eq!(c.post_json("/api/push/pause", serde_json::json!({}), Some(&csrf)).await.status, StatusCode::OK);
    // The API: dry run of another assignment, then the real one; unknown → 404.
    let r = c.post_json(&format!("/api/items/{}/assign", d.tied[1]), serde_json::json!({"domain": label(9)}), Some(&csrf)).await;
    let run2 = r.json()["run_id"].as_str().unwrap().to_string();
    let r = c.post_json(&format!("/api/runs/{run2}/rollback"), serde_json::json!({"dry_run": true}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["dry_run"], true);
    assert_eq!(d.columns(&d.tied[1]).1.as_deref(), Some("manual_assigned"));
    let r = c.post_json(&format!("/api/runs/{run2}/rollback"), serde_json::json!({}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(d.columns(&d.tied[1]).1.as_deref(), Some("tied_manual"));
    let r = c.post_json("/api/runs/20990101T000000Z-nothing-0000/rollback", serde_json::json!({}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn kill_switch_from_the_dashboard_and_the_api() {
    let (d, p, st) = setup(3);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let csrf = c.csrf.clone().unwrap();
    assert_eq!(c.post_form("/push/pause", &[]).await.status, StatusCode::FORBIDDEN);
    let r = c.post_form("/push/pause", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let stored: String = d.conn().query_row("SELECT value FROM companion_state WHERE key = 'push_paused'", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, "true", "kept in recon.db: survives restarts");
    let page = c.get("/peertube/review").await;
    assert!(page.body.contains("pushes paused") && page.body.contains("Resume pushes"));

    // Assigning goes on; nothing is pushed.
    let r = c.post_form(&format!("/peertube/review/{}/assign", d.tied[0]), &[("domain", label(2)), ("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(p.hashes().is_empty());
    assert!(c.get("/peertube/review").await.body.contains("pushes are paused"));
    assert_eq!(c.get("/api/push").await.json()["paused"], true);

    // A new state (a restart) still sees the switch.
    let st2 = state(&d, d.config(), p.clone());
    assert!(st2.is_paused());

    let r = c.send(caller(c.req("POST", "/api/push/resume"), CALLER, CALLER_TOKEN).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["paused"], false);
    // The queued push goes out at the next tick.
    let t = companion::server::worker::tick(&st).unwrap();
    assert_eq!(t.pushed, 1, "{t:?}");
    assert_eq!(p.hashes(), vec![d.tied[0].clone()]);
}

#[tokio::test]
async fn metrics_need_auth_and_expose_the_families() {
    let (_d, _p, st) = setup(3);
    companion::server::worker::tick(&st).unwrap();
    let mut c = Client::new(&st);
    assert_eq!(c.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    c.get("/healthz").await;
    let r = c.send(caller(c.req("GET", "/metrics"), CALLER, CALLER_TOKEN).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/openmetrics-text"));
    let b = &r.body;
    for needle in [
        "recon_companion_documents{status=\"tied_manual\"} 3",
        "recon_companion_documents{status=\"assigned\"} 3",
        "recon_companion_pushes_total",
        "recon_companion_worker_last_tick_age_seconds",
        "recon_companion_backlog{kind=\"unpushed\"}",
        "recon_companion_http_request_duration_seconds_bucket",
        "route=\"/healthz\"",
    ] {
        assert!(b.contains(needle), "{needle} missing:\n{b}");
    }
}

#[tokio::test]
async fn previews_read_only_the_journal_and_dead_runs_show_as_interrupted() {
    let (d, _p, st) = setup(2);
    let mut c = Client::new(&st);
    c.login(PASSWORD).await;
    let csrf = c.csrf.clone().unwrap();
    // A push run killed with kill -9: `running`, one video written, one pending.
    let conn = d.conn();
    let dead = companion::journal::start_run(&conn, "push", &serde_json::json!({})).unwrap();
    let video = uuid_of(&d.tied[0]);
    let rec = |key: &str, state| {
        companion::journal::record(
            &conn,
            &dead,
            companion::journal::Kind::Video,
            key,
            &serde_json::json!({ "category": 3 }),
            &serde_json::json!({ "category": 104 }),
            state,
        )
        .unwrap()
    };
    rec(&video, companion::journal::EntryState::Applied);
    rec(&uuid_of(&d.tied[1]), companion::journal::EntryState::Pending);

    // The preview: from the journal alone (PeerTube at 127.0.0.1:9 would fail).
    let r = c.get(&format!("/runs/{dead}/rollback")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("2 video(s) to restore in PeerTube"), "{}", r.body);
    let r = c.post_json(&format!("/api/runs/{dead}/rollback"), serde_json::json!({"dry_run": true}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["videos_restored"], 2);
    assert_eq!(r.json()["failed"], serde_json::json!([]));

    // The next run to take the lock marks it interrupted, and writes its report when it finishes.
    let r = c.post_json(&format!("/api/items/{}/assign", d.tied[0]), serde_json::json!({"domain": label(9)}), Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c.get("/api/runs").await;
    let runs = r.json()["runs"].as_array().unwrap().clone();
    let row = runs.iter().find(|x| x["run_id"] == dead.as_str()).unwrap();
    assert_eq!(row["state"], "interrupted", "{row}");
    let report = row["report_path"].as_str().expect("report written");
    let body = companion::journal::report::read_verified(std::path::Path::new(report)).unwrap();
    assert_eq!(body["counts"]["journal"]["video"]["pending"], 1);
    let page = c.get("/runs").await;
    assert!(page.body.contains("interrupted") && page.body.contains(&format!("/runs/{dead}/rollback")), "shown with its rollback link");
}
