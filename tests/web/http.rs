//! The pages over plain HTTP: sign-in codes, session expiry on the
//! injected clock, form tokens, other people's pages, headers and cookies.

use chrono::Duration;
use pinline::domain::account::{Role, User};
use pinline::domain::case::CaseStatus;
use reqwest::StatusCode;

use crate::harness::*;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
     object-src 'none'";

fn provider(site: &Site) -> User {
    site.user("Bayview", Role::Provider, "Dr. Rosa Diaz", "+14155550401")
}

fn staff(site: &Site) -> User {
    site.user("Bayview", Role::Staff, "Sam Ortiz", "+14155550402")
}

fn session_cookie(reply: &Reply) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("pinline-session="))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_sign_in_link_works_once() {
    let site = Site::start().await;
    let user = provider(&site);
    let link = site.login_link(&user);

    let mut first = site.visitor();
    let signed = first.use_link(&link).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.location(), "/account");
    let cookie = session_cookie(&signed);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let mut second = site.visitor();
    let again = second.use_link(&link).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains("does not work"), "{}", again.body);
    assert_eq!(session_cookie(&again), "");
    assert_eq!(second.get("/account").await.location(), "/login");
}

#[tokio::test]
async fn a_sign_in_code_can_be_typed_and_expires_after_ten_minutes() {
    let site = Site::start().await;
    let user = provider(&site);

    let typed = site.registry.issue_login_code(user.user_id).unwrap();
    site.clock.advance(Duration::minutes(9));
    let mut visitor = site.visitor();
    let page = visitor.get("/login").await;
    let token = field(&page.body, "form_token");
    let code = typed.grouped().to_lowercase();
    let signed = visitor
        .post("/login", &[("code", &code), ("form_token", &token)])
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);

    let late = site.login_link(&user);
    site.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let refused = site.visitor().use_link(&late).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_secret_burns_the_code() {
    let site = Site::start().await;
    let user = provider(&site);
    let link = site.login_link(&user);
    let last = link.chars().last().unwrap();
    let other = if last == 'Z' { 'Y' } else { 'Z' };
    let forged = format!("{}{other}", &link[..link.len() - 1]);

    assert_eq!(
        site.visitor().use_link(&forged).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        site.visitor().use_link(&link).await.status,
        StatusCode::UNAUTHORIZED,
        "a guess at the secret spends the code"
    );
}

#[tokio::test]
async fn the_sign_in_form_needs_its_own_cookie_token() {
    let site = Site::start().await;
    let user = provider(&site);
    let code = site.registry.issue_login_code(user.user_id).unwrap();
    // Another site can post the form, but cannot send the cookie.
    let mut visitor = site.visitor();
    let forged = visitor
        .post("/login", &[("code", code.as_str()), ("form_token", "x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let page = visitor.get(&format!("/login/{}", code.as_str())).await;
    let token = field(&page.body, "form_token");
    let signed = visitor
        .post("/login", &[("code", code.as_str()), ("form_token", &token)])
        .await;
    assert_eq!(
        signed.status,
        StatusCode::SEE_OTHER,
        "the refused post did not spend the code"
    );
}

#[tokio::test]
async fn a_session_ends_after_fifteen_idle_minutes() {
    let site = Site::start().await;
    let user = provider(&site);
    let mut visitor = site.visitor();
    let page = visitor.sign_in(&user).await;
    let csrf = page.csrf();
    let path = format!("/users/{}", user.user_id);

    // Activity restarts the timer.
    for _ in 0..3 {
        site.clock.advance(Duration::minutes(14));
        assert_eq!(visitor.get(&path).await.status, StatusCode::OK);
    }
    site.clock
        .advance(Duration::minutes(15) + Duration::seconds(1));
    let expired = visitor.get(&path).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(expired.location(), "/login?expired=1");
    let notice = visitor.get("/login?expired=1").await;
    assert!(notice.body.contains("15 minutes"), "{}", notice.body);

    // The session is gone: its cookie and form token do nothing.
    let view = visitor
        .post(&format!("{path}/pin/view"), &[("csrf", &csrf)])
        .await;
    assert_eq!(view.location(), "/login");
    assert!(site.events_on(&user, "web").is_empty());
}

#[tokio::test]
async fn forms_without_the_sessions_token_are_refused() {
    let site = Site::start().await;
    let user = provider(&site);
    let mut visitor = site.visitor();
    let page = visitor.sign_in(&user).await;
    let other_session = site.visitor().sign_in(&user).await.csrf();
    let view = format!("/users/{}/pin/view", user.user_id);
    let renew = format!("/users/{}/pin/new", user.user_id);
    let before = site.pin(&user);

    for form in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", other_session.as_str())],
    ] {
        let refused = visitor.post(&view, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{form:?}");
        assert!(!refused.body.contains(&before));
        assert_eq!(
            visitor.post(&renew, &form).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            visitor.post("/logout", &form).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert!(site.events_on(&user, "web").is_empty(), "nothing was done");
    assert_eq!(site.pin(&user), before);

    let shown = visitor.post(&view, &[("csrf", &page.csrf())]).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown
            .body
            .contains(&format!("data-state=\"shown\">{before}<")),
        "{}",
        shown.body
    );
    assert_eq!(site.events_on(&user, "web"), ["viewed"]);
}

#[tokio::test]
async fn generate_new_pin_replaces_and_shows_it() {
    let site = Site::start().await;
    let user = staff(&site);
    let mut visitor = site.visitor();
    let page = visitor.sign_in(&user).await;
    assert!(page.body.contains("<h1>Staff Account Information</h1>"));
    let before = site.pin(&user);
    let renewed = visitor
        .post(
            &format!("/users/{}/pin/new", user.user_id),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK);
    let after = site.pin(&user);
    assert_ne!(after, before);
    assert!(
        renewed
            .body
            .contains(&format!("data-state=\"shown\">{after}<"))
    );
    assert!(renewed.body.contains("A new Support PIN was generated"));
    assert_eq!(site.events_on(&user, "web"), ["viewed", "generated"]);
}

#[tokio::test]
async fn another_users_page_is_forbidden_and_reveals_nothing() {
    let site = Site::start().await;
    let me = provider(&site);
    let other = site.user("Bayview", Role::Provider, "Dr. Kim Park", "+14155550409");
    let mut visitor = site.visitor();
    let page = visitor.sign_in(&me).await;
    let csrf = page.csrf();
    let their_pin = site.pin(&other);

    let theirs = visitor.get(&format!("/users/{}", other.user_id)).await;
    let nobody = visitor.get("/users/99999999").await;
    let garbage = visitor.get("/users/not-a-user").await;
    for reply in [&theirs, &nobody, &garbage] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.body, theirs.body, "the same words for every refusal");
        assert!(
            !reply.body.contains(&other.name) && !reply.body.contains(&other.user_id.to_string())
        );
    }
    for action in ["pin/view", "pin/new"] {
        let path = format!("/users/{}/{action}", other.user_id);
        let refused = visitor.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(!refused.body.contains(&their_pin));
    }
    assert_eq!(site.pin(&other), their_pin);
    assert!(site.events_on(&other, "web").is_empty());
}

#[tokio::test]
async fn a_case_not_theirs_is_forbidden() {
    let site = Site::start().await;
    let me = provider(&site);
    let colleague = site.user("Bayview", Role::Provider, "Dr. Kim Park", "+14155550409");
    let asker = staff(&site);
    // Staff asking about a provider: only that provider approves.
    let (case, _) = site
        .registry
        .open_case(
            asker.user_id,
            colleague.user_id,
            &pinline::registry::Origin::cli(),
        )
        .unwrap();
    let mut visitor = site.visitor();
    let csrf = visitor.sign_in(&me).await.csrf();

    let path = format!("/users/{}/cases/{}", me.user_id, case.case_number);
    let refused = visitor
        .post(&path, &[("csrf", &csrf), ("decision", "approve")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let unknown = visitor
        .post(
            &format!("/users/{}/cases/999999", me.user_id),
            &[("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(unknown.body, refused.body);
    let status = site.registry.case(&case.case_number).unwrap().status;
    assert_eq!(status, CaseStatus::AwaitingApproval);

    // The approver can.
    let mut approver = site.visitor();
    let page = approver.sign_in(&colleague).await;
    assert!(
        page.body
            .contains(&format!("data-case=\"{}\"", case.case_number))
    );
    let path = format!("/users/{}/cases/{}", colleague.user_id, case.case_number);
    let done = approver
        .post(&path, &[("csrf", &page.csrf()), ("decision", "approve")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let status = site.registry.case(&case.case_number).unwrap().status;
    assert_eq!(status, CaseStatus::Approved);
    let after = approver.get(done.location()).await;
    assert!(
        after
            .body
            .contains(&format!("You approved case {}", case.case_number))
    );
}

#[tokio::test]
async fn users_and_agents_keep_to_their_own_pages() {
    let site = Site::start().await;
    let user = provider(&site);
    let (agent, passcode) = site.agent("Ana");
    let mut as_user = site.visitor();
    as_user.sign_in(&user).await;
    assert_eq!(as_user.get("/agent").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        as_user.get("/agent/events").await.status,
        StatusCode::FORBIDDEN
    );

    let mut as_agent = site.visitor();
    let signed = as_agent.sign_in_agent(&agent, &passcode).await;
    assert_eq!(signed.location(), "/agent");
    let path = format!("/users/{}", user.user_id);
    assert_eq!(as_agent.get(&path).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_carry_strict_security_headers() {
    let site = Site::start().await;
    let user = provider(&site);
    let (agent, passcode) = site.agent("Ana");
    let mut visitor = site.visitor();
    let page = visitor.sign_in(&user).await;
    let shown = visitor
        .post(
            &format!("/users/{}/pin/view", user.user_id),
            &[("csrf", &page.csrf())],
        )
        .await;
    let forbidden = visitor.get("/users/99999999").await;
    let mut agent_visitor = site.visitor();
    let sign_in = agent_visitor.get("/agent/login").await;
    agent_visitor.sign_in_agent(&agent, &passcode).await;
    let console = agent_visitor.get("/agent").await;
    let login = site.visitor().get("/login").await;

    for reply in [&page, &shown, &forbidden, &sign_in, &console, &login] {
        assert_eq!(reply.header("content-security-policy"), CSP);
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("referrer-policy"), "no-referrer");
        assert_eq!(reply.header("cache-control"), "no-store");
        // No inline script or style: every script has a src.
        assert_eq!(
            reply.body.matches("<script").count(),
            reply.body.matches("<script src=\"/static/").count()
        );
        assert!(!reply.body.contains(" style="), "{}", reply.body);
    }
    assert!(page.body.contains("name=\"viewport\""));
    let css = site.visitor().get("/static/pinline.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert_eq!(css.header("content-security-policy"), CSP);
    assert_eq!(
        site.visitor().get("/static/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cookies_are_secure_when_served_over_https() {
    let site = Site::start_with(Some("https://support.example")).await;
    let user = provider(&site);
    let mut visitor = site.visitor();
    let page = visitor.get("/login").await;
    let signin = page.header("set-cookie");
    assert!(signin.starts_with("__Host-pinline-signin="), "{signin}");
    assert!(signin.ends_with("; Secure"), "{signin}");
    let signed = visitor.use_link(&site.login_link(&user)).await;
    let cookie = session_cookie(&signed);
    assert!(cookie.starts_with("__Host-pinline-session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Secure"),
        "{cookie}"
    );
    let mine = visitor.get("/account").await;
    assert_eq!(mine.location(), format!("/users/{}", user.user_id));
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let site = Site::start().await;
    let user = provider(&site);
    let mut visitor = site.visitor();
    let page = visitor.sign_in(&user).await;
    let kept = visitor.cookies.clone();
    let out = visitor.post("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.location(), "/login?signed_out=1");
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    // Even a copy of the old cookie no longer works.
    visitor.cookies = kept;
    let path = format!("/users/{}", user.user_id);
    assert_eq!(visitor.get(&path).await.location(), "/login");
}

#[tokio::test]
async fn times_follow_the_chosen_zone_and_the_log_is_paged() {
    let site = Site::start().await;
    let user = provider(&site);
    for _ in 0..11 {
        site.registry
            .renew_pin(user.user_id, &pinline::registry::Origin::cli())
            .unwrap();
    }
    let mut visitor = site.visitor();
    visitor.sign_in(&user).await;
    let path = format!("/users/{}", user.user_id);

    let zoned = visitor.get(&format!("{path}?tz=America/New_York")).await;
    assert!(
        zoned.body.contains("2026-05-04 11:00:00 EDT"),
        "{}",
        zoned.body
    );
    let remembered = visitor.get(&path).await;
    assert!(remembered.body.contains("EDT") && !remembered.body.contains(" UTC<"));
    let unknown = visitor.get(&format!("{path}?tz=Mars/Base")).await;
    assert!(unknown.body.contains("That time zone is not known"));
    assert!(unknown.body.contains("EDT"));

    // 12 events (created, 11 renewals; sign-in adds none): two pages.
    assert_eq!(remembered.body.matches("<tr data-event=").count(), 10);
    assert!(remembered.body.contains(&format!("href=\"{path}?page=2\"")));
    let older = visitor.get(&format!("{path}?page=2")).await;
    assert_eq!(older.body.matches("<tr data-event=").count(), 2);
    assert!(older.body.contains("created"));
    assert!(!older.body.contains("?page=3"));
}

#[tokio::test]
async fn agents_sign_in_with_their_passcode_and_lock_like_the_agent_line() {
    let site = Site::start().await;
    let (agent, passcode) = site.agent("Ana");
    let (other, other_code) = site.agent("Ben");
    let wrong = if passcode.starts_with('1') { "2" } else { "1" }.repeat(8);
    let mut visitor = site.visitor();
    for _ in 0..5 {
        let refused = visitor.sign_in_agent(&agent, &wrong).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(!refused.body.contains(&wrong));
    }
    let locked = visitor.sign_in_agent(&agent, &passcode).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED, "locked out");
    assert!(site.registry.agents().unwrap().iter().any(|a| a.locked));
    let unknown = visitor.sign_in_agent("999999", &passcode).await;
    assert_eq!(
        unknown.body, locked.body,
        "same answer for an unknown agent"
    );

    let signed = visitor.sign_in_agent(&other, &other_code).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(visitor.get("/agent").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_console_claims_like_the_agent_line_and_streams_the_queue() {
    let site = Site::start().await;
    let caller = staff(&site);
    let sid = site.route_verified(&caller).await;
    let pin_now = site.pin(&caller);
    let (agent, passcode) = site.agent("Ana");
    let mut visitor = site.visitor();
    visitor.sign_in_agent(&agent, &passcode).await;
    let console = visitor.get("/agent").await;
    assert!(console.body.contains(&format!("data-call=\"{sid}\"")));
    assert!(console.body.contains("Sam Ortiz"));
    assert!(!console.body.contains(&format!(">{pin_now}<")));

    let refused = visitor.post("/agent/claim", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let claimed = visitor
        .post("/agent/claim", &[("csrf", &console.csrf())])
        .await;
    assert_eq!(claimed.location(), "/agent?notice=claimed");
    let held = site
        .registry
        .claim_next(agent.parse().unwrap(), &pinline::registry::Origin::cli());
    assert_eq!(
        held.unwrap().unwrap().call_sid,
        sid,
        "the agent line offers this caller"
    );
    let after = visitor.get(claimed.location()).await;
    assert!(after.body.contains("id=\"my-caller\""), "{}", after.body);
    let events: Vec<(String, String)> = site
        .registry
        .audit_events(caller.user_id, 5, 0)
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.channel))
        .collect();
    assert!(
        events.contains(&("claimed".into(), "web".into())),
        "{events:?}"
    );

    // The stream's first event is the queue, at once.
    let mut stream = site
        .client
        .get(format!("{}/agent/events", site.base))
        .header("cookie", visitor_cookie(&visitor))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.contains("event: queue"), "{first}");
    assert!(
        first.contains("claimed by you") && first.contains("Sam Ortiz"),
        "{first}"
    );
}

fn visitor_cookie(visitor: &Visitor<'_>) -> String {
    visitor
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn a_live_stream_does_not_keep_a_session_alive() {
    let site = Site::start().await;
    let (agent, passcode) = site.agent("Ana");
    let mut visitor = site.visitor();
    visitor.sign_in_agent(&agent, &passcode).await;
    site.clock.advance(Duration::minutes(10));
    let mut stream = site
        .client
        .get(format!("{}/agent/events", site.base))
        .header("cookie", visitor_cookie(&visitor))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.chunk().await.unwrap().is_some());
    drop(stream);
    site.clock.advance(Duration::minutes(6));
    assert_eq!(
        visitor.get("/agent").await.location(),
        "/agent/login?expired=1"
    );
    let again = visitor.get("/agent/events").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.location().starts_with("/agent/login"));
}
