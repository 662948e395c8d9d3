//! Help with someone else's account: the approval rules on the phone,
//! cases, and approval by reply and by phone.

use chrono::Duration;
use pinline::domain::account::{Role, User};
use pinline::domain::case::{CaseNumber, CaseStatus};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

const REFUSED: &str = "that request can't be handled";
const PENDING: &str = "Until the request is approved";

struct Practice {
    provider: User,
    other_provider: User,
    staff: User,
    other_staff: User,
}

fn practice(line: &Line) -> Practice {
    Practice {
        provider: line.user_named("Bayview", Role::Provider, "Dr. Rosa Diaz", "+14155550301"),
        other_provider: line.user_named("Bayview", Role::Provider, "Dr. Amir Khan", "+14155550302"),
        staff: line.user_named("Bayview", Role::Staff, "Sam Ortiz", "+14155550303"),
        other_staff: line.user_named("Bayview", Role::Staff, "Lee Chen", "+14155550304"),
    }
}

/// A verified call at the menu, as `who`.
async fn at_menu<'a>(line: &'a Line, who: &User) -> Call<'a> {
    let pin = line.pin(who);
    let mut call = line.call(who.phones[0].as_str());
    let menu = call.verify(who, &pin).await;
    assert!(says(&menu, MENU), "{menu}");
    call
}

async fn ask_about(line: &Line, who: &User, subject: &str) -> (String, String) {
    let mut call = at_menu(line, who).await;
    let prompt = call.press("2").await;
    assert!(says(&prompt, "/voice/subject-id"), "{prompt}");
    let answer = call.press(&format!("{subject}#")).await;
    (call.sid.clone(), answer)
}

fn only_case(line: &Line, status: CaseStatus) -> CaseNumber {
    let cases = line.registry.cases(Some(status)).unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    cases[0].case_number.clone()
}

#[tokio::test]
async fn a_provider_gets_help_for_their_own_staff_directly() {
    let line = Line::start().await;
    let p = practice(&line);
    let (sid, answer) = ask_about(&line, &p.provider, &p.staff.user_id.to_string()).await;
    assert!(waits_for_agent(&answer), "{answer}");
    let (class, context) = line.queue_context(&sid).unwrap();
    assert_eq!(class, "verified");
    assert_eq!(context["allowed"], "provider for own staff");
    assert_eq!(context["on_behalf_of"]["name"], "Sam Ortiz");
    assert_eq!(context["caller"]["name"], "Dr. Rosa Diaz");
    assert!(
        line.registry.cases(None).unwrap().is_empty(),
        "no case needed"
    );
}

#[tokio::test]
async fn staff_for_a_provider_opens_a_case_and_waits_marked_pending() {
    let line = Line::start().await;
    let p = practice(&line);
    let (sid, answer) = ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let spoken = number
        .as_str()
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        says(&answer, &format!("support case {spoken}")),
        "digit by digit: {answer}"
    );
    assert!(
        says(&answer, "replying to the case") && says(&answer, PENDING),
        "{answer}"
    );
    assert!(waits_for_agent(&answer));

    let (class, context) = line.queue_context(&sid).unwrap();
    assert_eq!(class, "approval_pending");
    assert_eq!(context["approval_pending"], true);
    assert_eq!(context["case_number"], number.as_str());
    let case = line.registry.case(&number).unwrap();
    let approvers: Vec<_> = case.approvers.iter().map(|a| a.user_id).collect();
    assert_eq!(approvers, [p.provider.user_id], "the subject approves");
    for user in [&p.staff, &p.provider] {
        let events = line.events(user);
        assert!(
            events
                .iter()
                .any(|e| e.event == "approval_requested" && e.detail.contains(number.as_str()))
        );
    }

    // Asking again reuses the open case.
    let (_, again) = ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    assert!(says(&again, &spoken));
    assert_eq!(line.registry.cases(None).unwrap().len(), 1);
}

#[tokio::test]
async fn staff_for_staff_needs_one_of_the_practices_providers() {
    let line = Line::start().await;
    let p = practice(&line);
    let (sid, _) = ask_about(&line, &p.staff, &p.other_staff.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let case = line.registry.case(&number).unwrap();
    let mut approvers: Vec<_> = case.approvers.iter().map(|a| a.user_id).collect();
    approvers.sort();
    let mut providers = vec![p.provider.user_id, p.other_provider.user_id];
    providers.sort();
    assert_eq!(approvers, providers);
    assert_eq!(line.queue_context(&sid).unwrap().0, "approval_pending");
}

#[tokio::test]
async fn a_provider_for_another_provider_needs_that_providers_approval() {
    let line = Line::start().await;
    let p = practice(&line);
    ask_about(&line, &p.provider, &p.other_provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let approvers: Vec<_> = line
        .registry
        .case(&number)
        .unwrap()
        .approvers
        .iter()
        .map(|a| a.user_id)
        .collect();
    assert_eq!(approvers, [p.other_provider.user_id]);
}

#[tokio::test]
async fn asking_about_ones_own_account_needs_nothing() {
    let line = Line::start().await;
    let p = practice(&line);
    let (sid, answer) = ask_about(&line, &p.staff, &p.staff.user_id.to_string()).await;
    assert!(waits_for_agent(&answer), "{answer}");
    assert_eq!(
        line.queue_context(&sid).unwrap().1["allowed"],
        "own account"
    );
}

#[tokio::test]
async fn unknown_and_cross_practice_ids_get_one_answer_and_return_to_the_menu() {
    let line = Line::start().await;
    let p = practice(&line);
    let outsider = line.user_named("Elsewhere Clinic", Role::Staff, "Kit Moss", "+14155550399");
    let (_, cross) = ask_about(&line, &p.provider, &outsider.user_id.to_string()).await;
    let (_, unknown) = ask_about(&line, &p.provider, "98989898").await;
    let (_, malformed) = ask_about(&line, &p.provider, "12").await;
    assert!(says(&cross, REFUSED) && says(&cross, MENU), "{cross}");
    assert_eq!(cross, unknown, "byte for byte");
    assert_eq!(cross, malformed);
    assert!(line.registry.cases(None).unwrap().is_empty());
}

#[tokio::test]
async fn approval_by_reply_updates_the_waiting_call_and_later_calls_are_allowed() {
    let line = Line::start().await;
    let p = practice(&line);
    let (sid, _) = ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);

    let body = json!({ "from": p.provider.user_id, "decision": "approve", "text": "Go ahead" });
    let (status, answer) = line
        .case_reply(number.as_str(), body, Some(CASE_TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "approved");
    assert_eq!(answer["status"], "approved");

    let (class, context) = line.queue_context(&sid).unwrap();
    assert_eq!(class, "verified", "the waiting caller moved up");
    assert_eq!(
        context["allowed"],
        format!("approved by Dr. Rosa Diaz in case {number}")
    );
    assert_eq!(context["approval_pending"], false);
    for user in [&p.staff, &p.provider] {
        let granted = line
            .events(user)
            .into_iter()
            .find(|e| e.event == "approval_granted")
            .unwrap();
        assert_eq!(granted.channel, "case");
    }

    let (sid, answer) = ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    assert!(!says(&answer, PENDING), "{answer}");
    assert_eq!(
        line.queue_context(&sid).unwrap().1["allowed"],
        format!("approved by Dr. Rosa Diaz in case {number}")
    );
    // The approval covers that requestor and subject only.
    ask_about(&line, &p.other_staff, &p.provider.user_id.to_string()).await;
    assert_eq!(
        line.registry
            .cases(Some(CaseStatus::AwaitingApproval))
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_approval_expires_after_a_day() {
    let line = Line::start().await;
    let p = practice(&line);
    ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let body = json!({ "from": p.provider.user_id, "decision": "approve" });
    line.case_reply(number.as_str(), body, Some(CASE_TOKEN))
        .await;
    line.clock.advance(Duration::hours(25));
    let (sid, answer) = ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    assert!(says(&answer, PENDING), "expired: {answer}");
    assert_eq!(line.queue_context(&sid).unwrap().0, "approval_pending");
    assert!(line.registry.case(&number).unwrap().expired);
}

#[tokio::test]
async fn a_reply_from_someone_who_is_not_an_approver_approves_nothing() {
    let line = Line::start().await;
    let p = practice(&line);
    ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let body = json!({ "from": p.other_staff.user_id, "decision": "approve" });
    let (status, answer) = line
        .case_reply(number.as_str(), body, Some(CASE_TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["outcome"], "recorded_only");
    assert_eq!(answer["status"], "awaiting_approval");
    let case = line.registry.case(&number).unwrap();
    assert!(
        case.trail
            .iter()
            .any(|t| t.kind == "reply" && t.text.contains("not an approver"))
    );
}

#[tokio::test]
async fn the_reply_endpoint_refuses_bad_tokens_and_bad_requests_and_changes_nothing() {
    let line = Line::start().await;
    let p = practice(&line);
    ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let approve = json!({ "from": p.provider.user_id, "decision": "approve" });
    let (status, _) = line
        .case_reply(number.as_str(), approve.clone(), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = line
        .case_reply(number.as_str(), approve.clone(), Some("guess"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = line
        .case_reply("999999", approve.clone(), Some(CASE_TOKEN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stranger = json!({ "from": 55555555, "decision": "approve" });
    let (status, _) = line
        .case_reply(number.as_str(), stranger, Some(CASE_TOKEN))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let nonsense = json!({ "from": p.provider.user_id, "decision": "maybe" });
    let (status, _) = line
        .case_reply(number.as_str(), nonsense, Some(CASE_TOKEN))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        line.registry.case(&number).unwrap().status,
        CaseStatus::AwaitingApproval
    );
    assert_eq!(line.registry.case(&number).unwrap().trail.len(), 1);

    line.registry
        .close_case(&number, &pinline::registry::Origin::cli())
        .unwrap();
    let (status, answer) = line
        .case_reply(number.as_str(), approve, Some(CASE_TOKEN))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        line.registry.case(&number).unwrap().status,
        CaseStatus::Closed
    );
}

/// A provider's call at the menu, pressing 3 and keying `case`.
async fn review<'a>(line: &'a Line, provider: &User, case: &str) -> (Call<'a>, String) {
    let mut call = at_menu(line, provider).await;
    let prompt = call.press("3").await;
    assert!(says(&prompt, "/voice/case-number"), "{prompt}");
    let answer = call.press(&format!("{case}#")).await;
    (call, answer)
}

#[tokio::test]
async fn a_provider_approves_by_phone_and_returns_to_the_menu() {
    let line = Line::start().await;
    let p = practice(&line);
    let (waiting, _) = ask_about(&line, &p.staff, &p.other_staff.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);

    let (mut call, summary) = review(&line, &p.other_provider, number.as_str()).await;
    assert!(
        says(
            &summary,
            "Sam Ortiz asks for help with the account of Lee Chen"
        ),
        "{summary}"
    );
    assert!(says(&summary, "/voice/approval") && says(&summary, "numDigits=\"1\""));
    let done = call.press("1").await;
    assert!(
        says(&done, "The request is approved") && says(&done, MENU),
        "{done}"
    );

    let case = line.registry.case(&number).unwrap();
    assert_eq!(case.status, CaseStatus::Approved);
    assert_eq!(case.decided_by, Some(p.other_provider.user_id));
    let granted = line
        .events(&p.staff)
        .into_iter()
        .find(|e| e.event == "approval_granted")
        .unwrap();
    assert_eq!(granted.channel, "phone");
    assert_eq!(granted.call_sid.as_deref(), Some(call.sid.as_str()));
    assert_eq!(line.queue_context(&waiting).unwrap().0, "verified");
}

#[tokio::test]
async fn a_provider_declines_by_phone() {
    let line = Line::start().await;
    let p = practice(&line);
    ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let (mut call, _) = review(&line, &p.provider, number.as_str()).await;
    let done = call.press("2").await;
    assert!(says(&done, "The request is declined"), "{done}");
    assert_eq!(
        line.registry.case(&number).unwrap().status,
        CaseStatus::Declined
    );
    assert!(
        line.events(&p.provider)
            .iter()
            .any(|e| e.event == "approval_declined")
    );
}

#[tokio::test]
async fn a_provider_cannot_decide_a_case_they_are_not_asked_about() {
    let line = Line::start().await;
    let p = practice(&line);
    ask_about(&line, &p.staff, &p.provider.user_id.to_string()).await;
    let number = only_case(&line, CaseStatus::AwaitingApproval);
    let (_, answer) = review(&line, &p.other_provider, number.as_str()).await;
    assert!(
        says(&answer, "no request awaiting your approval") && says(&answer, MENU),
        "{answer}"
    );
    let (_, unknown) = review(&line, &p.other_provider, "777777").await;
    assert_eq!(strip_steps(&unknown), strip_steps(&answer));
    assert_eq!(
        line.registry.case(&number).unwrap().status,
        CaseStatus::AwaitingApproval
    );
}

#[tokio::test]
async fn staff_pressing_three_hear_that_only_providers_approve() {
    let line = Line::start().await;
    let p = practice(&line);
    let mut call = at_menu(&line, &p.staff).await;
    let answer = call.press("3").await;
    assert!(
        says(&answer, "only providers can approve") && says(&answer, MENU),
        "{answer}"
    );
    assert!(says(&answer, "/voice/menu"));
}
