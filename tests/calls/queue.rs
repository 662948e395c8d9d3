//! The agent queue: priority order, exact one-to-one pairing through a
//! conference room per caller, abandonment, the agent line and its API.

use pinline::domain::account::{Role, User};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

/// The room name a TwiML document joins or waits in.
fn room(twiml: &str) -> Option<String> {
    let start = twiml.find(">pinline-")? + 1;
    let end = start + twiml[start..].find('<')?;
    Some(twiml[start..end].to_owned())
}

/// A verified caller routed with menu 1.
async fn routed_verified<'a>(line: &'a Line, user: &User) -> Call<'a> {
    let pin = line.pin(user);
    let mut call = line.call(user.phones[0].as_str());
    call.verify(user, &pin).await;
    let routed = call.press("1").await;
    assert!(waits_for_agent(&routed), "{routed}");
    call
}

/// A caller who failed three times, routed unverified.
async fn routed_unverified<'a>(line: &'a Line, from: &str) -> Call<'a> {
    let mut call = line.call(from);
    call.start().await;
    for _ in 0..3 {
        call.press("12#").await;
    }
    assert!(waits_for_agent(&call.last), "{}", call.last);
    call
}

/// A staff caller asking about a provider, routed approval-pending.
async fn routed_pending<'a>(line: &'a Line, staff: &User, provider: &User) -> Call<'a> {
    let pin = line.pin(staff);
    let mut call = line.call(staff.phones[0].as_str());
    call.verify(staff, &pin).await;
    call.press("2").await;
    let routed = call.press(&format!("{}#", provider.user_id)).await;
    assert!(waits_for_agent(&routed), "{routed}");
    call
}

fn people(line: &Line) -> (User, User, User) {
    (
        line.user_named("Bayview", Role::Provider, "Dr. Rosa Diaz", "+14155550401"),
        line.user_named("Bayview", Role::Staff, "Sam Ortiz", "+14155550402"),
        line.user_named("Bayview", Role::Staff, "Lee Chen", "+14155550403"),
    )
}

#[tokio::test]
async fn two_agents_get_callers_one_to_one_in_priority_order() {
    let line = Line::start().await;
    let (provider, staff, other) = people(&line);
    let unverified = routed_unverified(&line, "+14155550499").await;
    let pending = routed_pending(&line, &staff, &provider).await;
    let (a, a_code) = line.agent("Ana");
    let (b, b_code) = line.agent("Ben");

    // A signs in while only the pending and unverified callers wait.
    let mut agent_a = line.call("+14155550900");
    let offer_a = agent_a.sign_in(&a, &a_code).await;
    assert!(says(&offer_a, "Approval is pending"), "{offer_a}");
    // A verified caller arrives, and goes ahead of the unverified one.
    let verified = routed_verified(&line, &other).await;
    let mut agent_b = line.call("+14155550901");
    let offer_b = agent_b.sign_in(&b, &b_code).await;
    assert!(says(&offer_b, "Verified caller: Lee Chen"), "{offer_b}");

    let joined_b = agent_b.press("1").await;
    let joined_a = agent_a.press("1").await;
    assert_eq!(room(&joined_a), room(&pending.last));
    assert_eq!(room(&joined_b), room(&verified.last));
    assert!(
        says(&joined_a, "startConferenceOnEnter=\"true\""),
        "{joined_a}"
    );
    assert_ne!(room(&joined_a), room(&joined_b));

    // After the call, A takes the next caller without redialling.
    let next = agent_a.press("1").await;
    assert!(says(&next, "Unverified caller"), "{next}");
    assert_eq!(room(&agent_a.press("1").await), room(&unverified.last));
    let events = line.events(&other);
    assert!(events.iter().any(|e| e.event == "claimed"));
    assert!(events.iter().any(|e| e.event == "connected"));
}

#[tokio::test]
async fn concurrent_claims_never_give_two_agents_the_same_caller() {
    let line = Line::start().await;
    let mut rooms = Vec::new();
    for n in 0..4 {
        rooms.push(
            room(
                &routed_unverified(&line, &format!("+1415555060{n}"))
                    .await
                    .last,
            )
            .unwrap(),
        );
    }
    let tokens: Vec<String> = (0..8)
        .map(|n| line.agent_token(&line.agent(&format!("Agent {n}")).0))
        .collect();
    // Every claim in flight at once, each on its own task.
    let mut claims = tokio::task::JoinSet::new();
    for token in tokens {
        let client = line.client.clone();
        let url = format!("{}/api/v1/queue/claim", line.base());
        claims.spawn(async move {
            let response = client.post(url).bearer_auth(token).send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            (status, body)
        });
    }
    let answers = claims.join_all().await;
    let mut claimed: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body["call_sid"].as_str().unwrap().to_owned())
        .collect();
    let empty = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::NO_CONTENT)
        .count();
    assert_eq!((claimed.len(), empty), (4, 4), "{answers:?}");
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), 4, "every caller claimed once");
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_waiting_leaves_the_queue() {
    let line = Line::start().await;
    let (_, staff, _) = people(&line);
    let call = routed_verified(&line, &staff).await;
    assert_eq!(call.status("completed").await, StatusCode::NO_CONTENT);
    let (agent, code) = line.agent("Ana");
    let mut agent_call = line.call("+14155550900");
    let answer = agent_call.sign_in(&agent, &code).await;
    assert!(says(&answer, "No callers are waiting"), "{answer}");
    let left = line
        .events(&staff)
        .into_iter()
        .find(|e| e.event == "left_queue")
        .unwrap();
    assert!(left.detail.contains("while waiting"), "{}", left.detail);
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_whispered_is_not_connected() {
    let line = Line::start().await;
    let (_, staff, other) = people(&line);
    let first = routed_verified(&line, &staff).await;
    let second = routed_verified(&line, &other).await;
    let (agent, code) = line.agent("Ana");
    let mut agent_call = line.call("+14155550900");
    let offer = agent_call.sign_in(&agent, &code).await;
    assert!(says(&offer, "Sam Ortiz"), "{offer}");
    first.status("completed").await;
    let answer = agent_call.press("1").await;
    assert!(
        says(&answer, "That caller has hung up") && says(&answer, "Lee Chen"),
        "{answer}"
    );
    assert!(room(&answer).is_none(), "not connected to anyone yet");
    assert_eq!(room(&agent_call.press("1").await), room(&second.last));
    let left = line
        .events(&staff)
        .into_iter()
        .find(|e| e.event == "left_queue")
        .unwrap();
    assert!(left.detail.contains("while claimed"), "{}", left.detail);
}

#[tokio::test]
async fn a_passed_or_abandoned_claim_goes_back_to_the_front_of_its_class() {
    let line = Line::start().await;
    let (_, staff, other) = people(&line);
    let first = routed_verified(&line, &staff).await;
    let second = routed_verified(&line, &other).await;
    let (a, a_code) = line.agent("Ana");
    let (b, b_code) = line.agent("Ben");

    let mut agent_a = line.call("+14155550900");
    assert!(says(&agent_a.sign_in(&a, &a_code).await, "Sam Ortiz"));
    // Passing offers the next caller, not the same one again.
    let after_pass = agent_a.press("2").await;
    assert!(says(&after_pass, "Lee Chen"), "{after_pass}");
    assert!(
        line.events(&staff)
            .iter()
            .any(|e| e.event == "claim_released")
    );

    // A hangs up holding a claim on Lee: Lee goes back to the front.
    agent_a.status("completed").await;
    let mut agent_b = line.call("+14155550901");
    let offer = agent_b.sign_in(&b, &b_code).await;
    assert!(says(&offer, "Lee Chen"), "front of the class: {offer}");
    assert_eq!(room(&agent_b.press("1").await), room(&second.last));
    let mut agent_c = line.call("+14155550902");
    let (c, c_code) = line.agent("Cy");
    agent_c.sign_in(&c, &c_code).await;
    assert_eq!(room(&agent_c.press("1").await), room(&first.last));
}

#[tokio::test]
async fn wrong_passcodes_lock_an_agent_out_and_unknown_ids_sound_the_same() {
    let line = Line::start().await;
    let (agent, code) = line.agent("Ana");
    let mut call = line.call("+14155550900");
    let wrong = call.sign_in(&agent, "00000000").await;
    assert!(
        says(&wrong, "weren't recognized") && says(&wrong, "/voice/agent-id"),
        "{wrong}"
    );
    let mut stranger = line.call("+14155550901");
    let unknown = stranger.sign_in("999999", &code).await;
    assert_eq!(strip_steps(&unknown), strip_steps(&wrong));

    for n in 0..4 {
        let mut call = line.call(&format!("+1415555091{n}"));
        call.sign_in(&agent, "00000000").await;
    }
    let mut after = line.call("+14155550920");
    let refused = after.sign_in(&agent, &code).await;
    assert!(says(&refused, "weren't recognized"), "locked: {refused}");
    assert!(line.registry.agents().unwrap()[0].locked);
    let fresh = line
        .registry
        .reset_agent_passcode(agent.parse().unwrap())
        .unwrap();
    let mut again = line.call("+14155550921");
    assert!(says(
        &again.sign_in(&agent, &fresh).await,
        "No callers are waiting"
    ));
}

#[tokio::test]
async fn three_failed_sign_ins_in_one_call_hang_up() {
    let line = Line::start().await;
    let (agent, _) = line.agent("Ana");
    let mut call = line.call("+14155550900");
    call.sign_in(&agent, "11111111").await;
    call.press(&format!("{agent}#")).await;
    call.press("22222222#").await;
    call.press(&format!("{agent}#")).await;
    let last = call.press("33333333#").await;
    assert!(says(&last, "<Hangup/>"), "{last}");
}

#[tokio::test]
async fn the_whisper_says_what_the_agent_may_discuss() {
    let line = Line::start().await;
    let (provider, staff, other) = people(&line);
    let (agent, code) = line.agent("Ana");

    routed_verified(&line, &staff).await;
    let mut a = line.call("+14155550900");
    let whisper = a.sign_in(&agent, &code).await;
    assert!(
        says(&whisper, "Verified caller: Sam Ortiz, staff at Bayview"),
        "{whisper}"
    );
    assert!(
        says(&whisper, "caller ID matches a number on file"),
        "{whisper}"
    );
    assert!(says(&whisper, "Press 1 to connect"), "{whisper}");
    a.press("1").await;

    let pending = routed_pending(&line, &other, &provider).await;
    let whisper = a.press("1").await;
    assert!(
        says(&whisper, "Approval is pending in case")
            && says(&whisper, "Do not discuss the account of Dr. Rosa Diaz"),
        "{whisper}"
    );
    a.press("1").await;
    pending.status("completed").await;

    let case = line.registry.cases(None).unwrap()[0].case_number.clone();
    line.registry
        .reply_to_case(
            &case,
            provider.user_id,
            pinline::domain::case::Decision::Approve,
            None,
            &pinline::registry::Origin::cli(),
        )
        .unwrap();
    routed_pending(&line, &other, &provider).await;
    let whisper = a.press("1").await;
    assert!(
        says(
            &whisper,
            "Calling about the account of Dr. Rosa Diaz: approved by Dr. Rosa Diaz in case"
        ),
        "{whisper}"
    );
    a.press("1").await;

    routed_unverified(&line, "+14155550498").await;
    let whisper = a.press("1").await;
    assert!(
        says(&whisper, "Unverified caller. Do not discuss any account."),
        "{whisper}"
    );
    assert!(!says(&whisper, "caller ID"), "{whisper}");
}

#[tokio::test]
async fn the_hold_loop_says_the_place_in_line_and_loops_itself() {
    let line = Line::start().await;
    let (_, staff, other) = people(&line);
    routed_verified(&line, &staff).await;
    let mut second = routed_verified(&line, &other).await;
    let url = format!("{}/voice/hold", line.base());
    let hold = second.post(&url, &[]).await;
    assert!(says(&hold, "You are number 2 in line"), "{hold}");
    assert!(
        says(&hold, "<Play>") && says(&hold, "/voice/hold</Redirect>"),
        "{hold}"
    );
}

#[tokio::test]
async fn the_api_refuses_missing_wrong_and_revoked_tokens_alike() {
    let line = Line::start().await;
    let (agent, _) = line.agent("Ana");
    let token = line.agent_token(&agent);
    let (ok, body) = line.api("GET", "/api/v1/queue", Some(&token), None).await;
    assert_eq!(ok, StatusCode::OK, "{body}");
    let refusals = [
        line.api("GET", "/api/v1/queue", None, None).await,
        line.api("GET", "/api/v1/queue", Some("pl_0123456789ab_nope"), None)
            .await,
        line.api("POST", "/api/v1/queue/claim", Some("garbage"), None)
            .await,
    ];
    let token_id = token.split('_').nth(1).unwrap();
    line.registry.revoke_agent_token(token_id).unwrap();
    let revoked = line.api("GET", "/api/v1/queue", Some(&token), None).await;
    for (status, body) in refusals.iter().chain([&revoked]) {
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, &revoked.1, "nothing tells them apart");
    }
}

#[tokio::test]
async fn the_queue_api_lists_callers_with_context_and_never_a_pin() {
    let line = Line::start().await;
    let (_, staff, _) = people(&line);
    routed_verified(&line, &staff).await;
    routed_unverified(&line, "+14155550497").await;
    let token = line.agent_token(&line.agent("Ana").0);
    let (_, body) = line.api("GET", "/api/v1/queue", Some(&token), None).await;
    let callers = body["callers"].as_array().unwrap();
    assert_eq!(callers.len(), 2);
    assert_eq!(callers[0]["class"], "verified");
    assert_eq!(callers[0]["position"], 1);
    assert_eq!(callers[0]["context"]["caller"]["name"], "Sam Ortiz");
    assert_eq!(callers[1]["context"]["verified"], false);
    assert_eq!(body["depth"]["verified"], 1);
    let text = body.to_string();
    assert!(!text.contains(&format!("\"{}\"", line.pin(&staff))));
    assert!(!text.to_lowercase().contains("pin\""), "{text}");

    let (status, claimed) = line
        .api("POST", "/api/v1/queue/claim", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claimed["context"]["caller"]["name"], "Sam Ortiz");
    // Claiming again returns the same caller: the claim is the agent's.
    let (_, again) = line
        .api("POST", "/api/v1/queue/claim", Some(&token), None)
        .await;
    assert_eq!(again["call_sid"], claimed["call_sid"]);
}

#[tokio::test]
async fn an_agent_verifies_a_pin_given_another_way_and_the_caller_moves_up() {
    let line = Line::start().await;
    let (_, staff, _) = people(&line);
    let waiting = routed_unverified(&line, "+14155550496").await;
    let (agent, _) = line.agent("Ana");
    let token = line.agent_token(&agent);
    let pin = line.pin(&staff);

    let wrong = json!({ "user_id": staff.user_id, "pin": format!("{:04}", (pin.parse::<u32>().unwrap() + 1) % 10000), "channel": "email" });
    let (_, answer) = line
        .api("POST", "/api/v1/verifications", Some(&token), Some(wrong))
        .await;
    assert_eq!(answer, json!({ "verified": false }));
    let unknown = json!({ "user_id": "98765432", "pin": pin, "channel": "case" });
    let (_, answer) = line
        .api("POST", "/api/v1/verifications", Some(&token), Some(unknown))
        .await;
    assert_eq!(
        answer,
        json!({ "verified": false }),
        "unknown users look like wrong PINs"
    );

    let right = json!({ "user_id": staff.user_id.to_string(), "pin": pin, "channel": "phone", "call_sid": waiting.sid });
    let (status, answer) = line
        .api(
            "POST",
            "/api/v1/verifications",
            Some(&token),
            Some(right.clone()),
        )
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({ "verified": true }))
    );
    assert_ne!(line.pin(&staff), pin, "rotated, as on the keypad");
    let (_, again) = line
        .api("POST", "/api/v1/verifications", Some(&token), Some(right))
        .await;
    assert_eq!(again, json!({ "verified": false }), "never twice");

    let (class, context) = line.queue_context(&waiting.sid).unwrap();
    assert_eq!(class, "verified");
    assert_eq!(context["caller"]["name"], "Sam Ortiz");
    let validated = line
        .events(&staff)
        .into_iter()
        .find(|e| e.event == "validated")
        .unwrap();
    assert_eq!(validated.actor, format!("agent:{agent}"));
    assert_eq!(validated.channel, "phone");

    let bad = json!({ "user_id": staff.user_id, "pin": "1234", "channel": "fax" });
    let (status, _) = line
        .api("POST", "/api/v1/verifications", Some(&token), Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn metrics_show_queue_depth_and_waits() {
    let line = Line::start().await;
    let (_, staff, _) = people(&line);
    routed_verified(&line, &staff).await;
    routed_unverified(&line, "+14155550495").await;
    let metrics = || async {
        line.client
            .get(format!("{}/metrics", line.base()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = metrics().await;
    assert!(
        text.contains("pinline_queue_depth{class=\"verified\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pinline_queue_depth{class=\"unverified\"} 1"),
        "{text}"
    );
    let (agent, code) = line.agent("Ana");
    let mut a = line.call("+14155550900");
    a.sign_in(&agent, &code).await;
    a.press("1").await;
    let text = metrics().await;
    assert!(
        text.contains("pinline_queue_wait_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains("pinline_queue_depth{class=\"verified\"} 0"),
        "{text}"
    );
}
