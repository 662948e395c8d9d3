//! Keypad verification: PINs, retries, silence, locks, signatures.

use chrono::Duration;
use pinline::domain::account::{Role, User};
use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn a_right_pin_verifies_rotates_and_routes_with_context() {
    let line = Line::start().await;
    let user = line.user(Role::Provider, "+14155550177");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550177");

    let greeting = call.start().await;
    assert!(says(&greeting, "enter your user ID"), "{greeting}");
    assert!(says(&greeting, "finishOnKey=\"#\""));
    assert!(says(&greeting, "actionOnEmptyResult=\"true\""));
    let pin_prompt = call.press(&format!("{}#", user.user_id)).await;
    assert!(says(&pin_prompt, "numDigits=\"4\""), "{pin_prompt}");
    let menu = call.press(&pin).await;
    assert!(
        says(&menu, "You're verified") && says(&menu, MENU),
        "{menu}"
    );
    assert!(says(&menu, "numDigits=\"1\""));
    assert_ne!(line.pin(&user), pin, "the PIN rotated");

    let routed = call.press("1").await;
    assert!(waits_for_agent(&routed), "{routed}");

    let events = line.events(&user);
    let validated = events.iter().find(|e| e.event == "validated").unwrap();
    assert_eq!(validated.channel, "phone");
    assert_eq!(validated.call_sid.as_deref(), Some(call.sid.as_str()));
    assert!(
        validated.detail.contains("caller ID matched: yes"),
        "{}",
        validated.detail
    );
    assert!(validated.detail.contains("TN-Validation-Passed-A"));
    let state = line.call_state(&call.sid);
    assert!(
        state.contains("\"caller_id_matched\":true") && state.contains("routed"),
        "{state}"
    );
}

#[tokio::test]
async fn a_wrong_pin_then_the_right_one_verifies() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550178");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550100");
    let retry = call.verify(&user, &wrong(&pin)).await;
    assert!(
        says(&retry, RETRY) && says(&retry, "/voice/user-id"),
        "{retry}"
    );
    call.press(&format!("{}#", user.user_id)).await;
    let menu = call.press(&pin).await;
    assert!(says(&menu, MENU), "{menu}");
    let events = line.events(&user);
    assert!(events.iter().any(|e| e.event == "validation_failed"));
    assert!(
        events[1].detail.contains("caller ID matched: no"),
        "{}",
        events[1].detail
    );
}

#[tokio::test]
async fn three_failures_route_the_caller_unverified() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550179");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550179");
    call.verify(&user, &wrong(&pin)).await;
    call.press(&format!("{}#", user.user_id)).await;
    call.press(&wrong(&pin)).await;
    call.press("12#").await;
    let last = &call.last;
    assert!(
        says(last, "weren't able to verify") && waits_for_agent(last),
        "{last}"
    );
    assert!(line.call_state(&call.sid).contains("unverified"));
    assert!(!line.call_state(&call.sid).contains("\"verified\":{"));
}

#[tokio::test]
async fn five_wrong_pins_across_calls_lock_and_the_right_pin_then_sounds_wrong() {
    let line = Line::start().await;
    let user = line.user(Role::Provider, "+14155550180");
    let pin = line.pin(&user);
    let mut first = line.call("+14155550101");
    first.verify(&user, &wrong(&pin)).await;
    first.press(&format!("{}#", user.user_id)).await;
    first.press(&wrong(&pin)).await;
    let mut second = line.call("+14155550102");
    second.verify(&user, &wrong(&pin)).await;
    second.press(&format!("{}#", user.user_id)).await;
    let wrong_answer = second.press(&wrong(&pin)).await;
    let mut third = line.call("+14155550103");
    third.verify(&user, &wrong(&pin)).await;
    assert!(line.registry.is_locked(user.user_id).unwrap());

    let mut fourth = line.call("+14155550104");
    let locked_answer = fourth.verify(&user, &pin).await;
    assert!(says(&locked_answer, RETRY), "{locked_answer}");
    // Same words and same next step as any wrong PIN at that point.
    assert_eq!(
        strip_steps(&locked_answer),
        strip_steps(&wrong_answer.replace("step=5", "step=3"))
    );
    assert_eq!(line.pin(&user), pin, "a locked PIN does not rotate");
}

#[tokio::test]
async fn an_unknown_user_id_hears_exactly_what_a_wrong_pin_hears() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550181");
    let pin = line.pin(&user);
    let mut known = line.call("+14155550105");
    let wrong_pin = known.verify(&user, &wrong(&pin)).await;
    let mut unknown = line.call("+14155550106");
    unknown.start().await;
    let ask = unknown.press("87878787#").await;
    assert_eq!(
        ask,
        {
            let mut c = line.call("+14155550107");
            c.start().await;
            c.press(&format!("{}#", user.user_id)).await
        },
        "the PIN prompt does not depend on the ID"
    );
    let unknown_answer = unknown.press("1234").await;
    assert_eq!(unknown_answer, wrong_pin, "byte for byte");
}

#[tokio::test]
async fn silence_reprompts_then_hangs_up() {
    let line = Line::start().await;
    let mut call = line.call("+14155550108");
    call.start().await;
    let again = call.silence().await;
    assert!(
        says(&again, "didn't hear anything") && says(&again, "<Gather"),
        "{again}"
    );
    let bye = call.press("").await;
    assert!(says(&bye, "<Hangup/>") && says(&bye, "Goodbye"), "{bye}");
    assert!(line.call_state(&call.sid).contains("ended"));
}

#[tokio::test]
async fn a_retried_pin_step_gives_the_same_answer_and_validates_once() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550182");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550109");
    call.start().await;
    call.press(&format!("{}#", user.user_id)).await;
    let url = action(&call.last);
    let first = call.post(&url, &[("Digits", &pin)]).await;
    let second = call.post(&url, &[("Digits", &pin)]).await;
    assert_eq!(first, second);
    assert!(says(&first, MENU));
    let validated = line
        .events(&user)
        .iter()
        .filter(|e| e.event == "validated")
        .count();
    assert_eq!(validated, 1);
    // The incoming step too.
    let incoming = format!("{}/voice/incoming", line.base());
    let mut other = line.call("+14155550110");
    let a = other.post(&incoming, &[]).await;
    let b = other.post(&incoming, &[]).await;
    assert_eq!(a, b);
    assert_eq!(line.call_rows(), 2);
}

#[tokio::test]
async fn out_of_order_and_unknown_call_steps_get_a_safe_answer_and_change_nothing() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550183");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550111");
    call.start().await;
    let before = line.call_state(&call.sid);
    let menu_url = format!("{}/voice/menu?step=1", line.base());
    let answer = call.post(&menu_url, &[("Digits", "1")]).await;
    assert!(
        says(&answer, "try that again") && says(&answer, "/voice/user-id?step=1"),
        "{answer}"
    );
    let future = format!("{}/voice/pin?step=9", line.base());
    call.post(&future, &[("Digits", &pin)]).await;
    assert_eq!(line.call_state(&call.sid), before);
    assert!(line.events(&user).iter().all(|e| e.event != "validated"));

    let mut stranger = line.call("+14155550112");
    let answer = stranger
        .post(
            &format!("{}/voice/pin?step=2", line.base()),
            &[("Digits", "1234")],
        )
        .await;
    assert!(says(&answer, "/voice/incoming</Redirect>"), "{answer}");
    assert_eq!(line.call_rows(), 1);
}

#[tokio::test]
async fn bad_signatures_get_403_and_write_nothing() {
    let line = Line::start().await;
    let call = line.call("+14155550113");
    let url = format!("{}/voice/incoming", line.base());
    let params = call.params(&[]);
    let (status, _) = line
        .post_signed(&url, &params, "X-Twilio-Signature", "another-token")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = line
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "unsigned");
    // Signed for other parameters.
    let signature = pinline::signature::sign(TOKEN.as_bytes(), &url, &params);
    let mut altered = params.clone();
    altered.push(("Digits".into(), "1234".into()));
    let response = line
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(encode(&altered))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(line.call_rows(), 0);

    let (status, _) = line
        .post_signed(&url, &params, "X-SignalWire-Signature", TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK, "SignalWire's header is accepted");
}

#[tokio::test]
async fn nine_at_the_greeting_switches_the_call_to_spanish() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550184");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550114");
    call.start().await;
    let spanish = call.press("9").await;
    assert!(
        says(&spanish, "language=\"es-US\"") && says(&spanish, "Polly.Lupe"),
        "{spanish}"
    );
    let menu = call.verify_again(&user, &pin).await;
    assert!(says(&menu, "language=\"es-US\""), "kept: {menu}");
    assert!(!says(&menu, "en-US"));
}

#[tokio::test]
async fn a_call_survives_a_server_restart() {
    let mut line = Line::start().await;
    let user = line.user(Role::Provider, "+14155550185");
    let pin = line.pin(&user);
    let sid;
    let last;
    {
        let mut call = line.call("+14155550185");
        call.start().await;
        call.press(&format!("{}#", user.user_id)).await;
        sid = call.sid.clone();
        last = call.last.clone();
    }
    line.restart().await;
    let mut call = line.call("+14155550185");
    call.sid = sid;
    // The new server listens elsewhere; the stored URL's path and step
    // still hold.
    let path = action(&last);
    let path = &path[path.find("/voice/").unwrap()..];
    let url = format!("{}{path}", line.base());
    let menu = call.post(&url, &[("Digits", &pin)]).await;
    assert!(says(&menu, MENU), "{menu}");
}

#[tokio::test]
async fn the_status_callback_ends_the_call_and_its_verification() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550186");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550115");
    call.verify(&user, &pin).await;
    assert_eq!(call.status("completed").await, StatusCode::NO_CONTENT);
    let state = line.call_state(&call.sid);
    assert!(
        state.contains("ended") && !state.contains("\"verified\":{"),
        "{state}"
    );
    let after = call.press("1").await;
    assert!(
        says(&after, "<Hangup/>") && !waits_for_agent(&after),
        "{after}"
    );
    assert_eq!(call.status("ringing").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_call_idle_for_over_fifteen_minutes_starts_over_unverified() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550187");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550116");
    call.verify(&user, &pin).await;
    line.clock.advance(Duration::minutes(16));
    let answer = call.press("1").await;
    assert!(
        says(&answer, "start over") && says(&answer, "/voice/user-id"),
        "{answer}"
    );
    assert!(!line.call_state(&call.sid).contains("\"verified\":{"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_status_or_safe_twiml_and_writes_nothing() {
    let line = Line::start().await;
    let url = format!("{}/voice/incoming", line.base());
    let mut call = line.call("+14155550117");

    let big = "x".repeat(70 * 1024);
    let params = call.params(&[("Padding", &big)]);
    let (status, _) = line
        .post_signed(&url, &params, "X-Twilio-Signature", TOKEN)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let response = line
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut no_sid = call.params(&[]);
    no_sid.retain(|(k, _)| k != "CallSid");
    let (status, _) = line
        .post_signed(&url, &no_sid, "X-Twilio-Signature", TOKEN)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let mut twice = call.params(&[]);
    twice.push(("CallSid".into(), "CAother".into()));
    let (status, _) = line
        .post_signed(&url, &twice, "X-Twilio-Signature", TOKEN)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let response = line.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(line.call_rows(), 0);

    call.start().await;
    let before = line.call_state(&call.sid);
    for junk in ["12ab#", "<Say>", &"1".repeat(40), "١٢٣٤"] {
        let answer = call.press(junk).await;
        assert!(says(&answer, "try that again"), "{junk}: {answer}");
        assert_eq!(line.call_state(&call.sid), before, "{junk}");
    }
    let no_step = format!("{}/voice/pin", line.base());
    let (status, _) = line
        .post_signed(
            &no_step,
            &call.params(&[("Digits", "1234")]),
            "X-Twilio-Signature",
            TOKEN,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_throttled_number_is_refused_unchecked_and_counted() {
    let line = Line::start_with(|c| c.caller_failures_per_hour = 3).await;
    let users: Vec<User> = (0..4)
        .map(|i| line.user(Role::Staff, &format!("+1415555019{i}")))
        .collect();
    let mut call = line.call("+14155550118");
    call.start().await;
    for user in &users[..3] {
        call.press(&format!("{}#", user.user_id)).await;
        let pin = line.pin(user);
        call.press(&wrong(&pin)).await;
    }
    let mut next = line.call("+14155550118");
    let pin = line.pin(&users[3]);
    let answer = next.verify(&users[3], &pin).await;
    assert!(says(&answer, RETRY), "{answer}");
    assert_eq!(line.pin(&users[3]), pin, "not even checked");
    assert!(
        line.events(&users[3])
            .iter()
            .all(|e| e.event != "validated" && e.event != "validation_failed")
    );
    let metrics = line
        .client
        .get(format!("{}/metrics", line.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pinline_throttled_attempts_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_count_calls_verifications_lockouts_and_latency() {
    let line = Line::start_with(|c| c.failures_per_hour = 1).await;
    let user = line.user(Role::Staff, "+14155550188");
    let pin = line.pin(&user);
    let mut call = line.call("+14155550119");
    call.verify(&user, &wrong(&pin)).await;
    call.press(&format!("{}#", user.user_id)).await;
    call.press(&wrong(&pin)).await;
    let mut good = line.call("+14155550120");
    good.verify(&user, &line.pin(&user)).await;
    let text = line
        .client
        .get(format!("{}/metrics", line.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("pinline_calls_total 2"), "{text}");
    assert!(
        text.contains("pinline_verifications_total{outcome=\"failed\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("pinline_verifications_total{outcome=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pinline_failure_rate_alerts_total{scope=\"all\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pinline_webhook_duration_seconds_count{route=\"pin\"} 3"),
        "{text}"
    );
    assert!(text.contains("pinline_lockouts_total 0"));
    let health = line
        .client
        .get(format!("{}/healthz", line.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn lockouts_are_counted() {
    let line = Line::start().await;
    let user = line.user(Role::Staff, "+14155550189");
    let pin = line.pin(&user);
    for n in 0..5 {
        let mut call = line.call(&format!("+1415555020{n}"));
        call.verify(&user, &wrong(&pin)).await;
    }
    let text = line
        .client
        .get(format!("{}/metrics", line.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("pinline_lockouts_total 1"), "{text}");
}

#[tokio::test]
async fn a_pin_never_appears_in_the_logs_of_a_whole_call() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("logs.db");
    let bin = env!("CARGO_BIN_EXE_pinline");
    let run = |args: &[&str]| crate::support::pinline(&db, args).trim().to_owned();
    run(&["key", "init"]);
    run(&["practice", "add", "Logs"]);
    let id = run(&[
        "user",
        "add",
        "--practice",
        "Logs",
        "--role",
        "staff",
        "--name",
        "L",
        "--phone",
        "+14155550190",
    ]);
    // A PIN that looks like a year or a port would match text that is
    // not the PIN; renew until it cannot be confused.
    let mut pin = run(&["pin", "show", &id]);
    while pin.starts_with("20") || pin.starts_with("19") {
        run(&["pin", "new", &id]);
        pin = run(&["pin", "show", &id]);
    }

    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--db")
        .arg(&db)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("RUST_LOG", "trace")
        .env_remove("PINLINE_PIN_KEY")
        .env_remove("PINLINE_AUDIT_KEY")
        .env_remove("PINLINE_PUBLIC_URL")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("pinline listening on ") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0);
    }
    let base = line
        .trim()
        .trim_start_matches("pinline listening on ")
        .to_owned();

    // Drive the call by hand against the child process.
    let client = reqwest::Client::new();
    let sid = "CA0123456789abcdef0123456789abcdef";
    let post = |url: String, digits: Option<String>| {
        let client = client.clone();
        async move {
            let mut params: Vec<(String, String)> = vec![
                ("CallSid".into(), sid.into()),
                ("From".into(), "+14155550190".into()),
                ("To".into(), "+18005550100".into()),
            ];
            if let Some(d) = digits {
                params.push(("Digits".into(), d));
            }
            let signature = pinline::signature::sign(TOKEN.as_bytes(), &url, &params);
            let response = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("X-Twilio-Signature", signature)
                .body(encode(&params))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let greeting = post(format!("{base}/voice/incoming"), None).await;
    let ask_pin = post(action(&greeting), Some(format!("{id}#"))).await;
    let wrong_try = post(action(&ask_pin), Some(wrong(&pin))).await;
    let ask_pin = post(action(&wrong_try), Some(format!("{id}#"))).await;
    let menu = post(action(&ask_pin), Some(pin.clone())).await;
    assert!(menu.contains(MENU), "{menu}");
    post(action(&menu), Some("1".into())).await;

    child.kill().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    child.wait().unwrap();
    assert!(logs.contains(sid), "the logs are there: {logs}");
    assert!(logs.lines().count() >= 6);
    for secret in [pin.as_str(), &wrong(&pin)] {
        let bounded = logs.match_indices(secret).any(|(i, _)| {
            let before = logs[..i]
                .chars()
                .last()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            let after = logs[i + 4..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            before && after
        });
        assert!(!bounded, "keyed digits {secret} found in the logs");
    }
    assert!(!logs.contains("Digits"), "no raw Digits parameter");
}
