//! Golden TwiML fixtures.

use pinline::prompts::PromptCatalog;

/// Golden TwiML for every kind of answer. Set `UPDATE_GOLDEN=1` to
/// rewrite the files after a deliberate change, then review the diff.
#[test]
fn every_kind_of_answer_matches_its_golden_twiml() {
    use pinline::flow::{self, Decision, Input, PinOutcome, VerifiedCaller};
    use pinline::ivr::render;
    use pinline::prompts::Language;

    let prompts = PromptCatalog::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts"),
    )
    .unwrap();
    let base = "https://pinline.example.org";
    let at = |step| render::Target {
        base_url: base,
        call_sid: "CA0123456789abcdef0123456789abcdef",
        step,
    };
    let reply_of = |state: &flow::CallState, digits: Option<&str>| match flow::on_input(
        state,
        digits.map_or(Input::Silence, Input::Digits),
    ) {
        Decision::Reply(s, r) => (*s, r),
        other => panic!("{other:?}"),
    };
    let caller = VerifiedCaller {
        user_id: pinline::domain::account::UserId::parse("12345678").unwrap(),
        name: "Morgan Ellis".into(),
        role: "staff".into(),
        practice: "Bayview".into(),
        verified_at: "2026-05-04T15:00:00Z".into(),
        caller_id_matched: true,
        stir_verstat: None,
    };
    let (start, greeting) = flow::start();
    let (spanish, spanish_prompt) = reply_of(&start, Some("9"));
    let (at_pin, pin_prompt) = reply_of(&start, Some("12345678"));
    let (_, invalid_id) = reply_of(&start, Some("12"));
    let (silent_once, reprompt) = reply_of(&start, None);
    let (_, goodbye) = reply_of(&silent_once, None);
    let (_, retry) = flow::on_pin_outcome(&at_pin, PinOutcome::Rejected);
    let (at_menu, menu) = flow::on_pin_outcome(&at_pin, PinOutcome::Verified(caller));
    let (_, routed) = reply_of(&at_menu, Some("1"));
    let (at_subject, unavailable) = reply_of(&at_menu, Some("2"));
    let subject = flow::Subject {
        user_id: pinline::domain::account::UserId::parse("87654321").unwrap(),
        name: "Dr. Rosa Diaz".into(),
        role: "provider".into(),
    };
    let pending_request = flow::OnBehalf {
        subject,
        allowed: "approval pending in case 314159".into(),
        case_number: Some("314159".into()),
        pending: true,
    };
    let (_, case_opened) =
        flow::on_subject_ruling(&at_subject, flow::SubjectRuling::Pending(pending_request));
    let (_, refused) = flow::on_subject_ruling(&at_subject, flow::SubjectRuling::Refused);
    let (_, only_providers) = reply_of(&at_menu, Some("3"));
    let mut provider_menu = at_menu.clone();
    if let Some(v) = provider_menu.verified.as_mut() {
        v.role = "provider".into();
    }
    let (at_case, case_prompt) = reply_of(&provider_menu, Some("3"));
    let summary = flow::CaseSummary {
        case_number: "314159".into(),
        requestor_name: "Sam Ortiz".into(),
        subject_name: "Dr. Rosa Diaz".into(),
    };
    let (reviewing, case_summary) = flow::on_case_lookup(&at_case, Some(summary));
    let (_, case_missing) = flow::on_case_lookup(&at_case, None);
    let (_, case_approved) = flow::on_case_decided(&reviewing, Some(true));
    let (_, invalid_choice) = reply_of(&at_menu, Some("8"));
    let mut failing = at_pin.clone();
    failing.failed_tries = 2;
    let (_, transfer) = flow::on_pin_outcome(&failing, PinOutcome::Rejected);
    let (_, restart) = flow::restart(&at_menu);
    let repeat = flow::repeat(&at_pin);

    let en = |reply: &flow::Reply, step| render::render(reply, Language::EnUs, &prompts, at(step));
    let (agent_start, agent_greeting) = pinline::agent_flow::start();
    let offer = pinline::agent_flow::Offer {
        call_sid: "CA0123456789abcdef0123456789abcdef".into(),
        context: at_menu_routed_context(&at_menu),
        waited_secs: 95,
    };
    let (offered, whisper) = pinline::agent_flow::on_claim(&agent_start, Some(offer), None);
    let (_, queue_empty) = pinline::agent_flow::on_claim(&agent_start, None, None);
    let joined = match pinline::agent_flow::on_connect(&offered, true) {
        pinline::agent_flow::AgentDecision::Reply(_, reply) => reply,
        other => panic!("{other:?}"),
    };
    let cases: Vec<(&str, String)> = vec![
        ("agent_greeting", en(&agent_greeting, 1)),
        ("agent_whisper_verified", en(&whisper, 4)),
        ("agent_queue_empty", en(&queue_empty, 4)),
        ("agent_joins_caller", en(&joined, 5)),
        (
            "hold_loop",
            render::hold(&prompts, Language::EnUs, base, Some(2)),
        ),
        ("case_opened_pending", en(&case_opened, 5)),
        ("request_refused", en(&refused, 5)),
        ("only_providers_approve", en(&only_providers, 4)),
        ("case_number_prompt", en(&case_prompt, 4)),
        ("case_summary", en(&case_summary, 5)),
        ("case_unavailable", en(&case_missing, 5)),
        ("case_approved", en(&case_approved, 6)),
        (
            "greeting",
            render::render(&greeting, Language::EnUs, &prompts, at(1)),
        ),
        (
            "spanish_user_id",
            render::render(&spanish_prompt, spanish.language.into(), &prompts, at(2)),
        ),
        (
            "pin_prompt",
            render::render(&pin_prompt, Language::EnUs, &prompts, at(2)),
        ),
        (
            "invalid_user_id",
            render::render(&invalid_id, Language::EnUs, &prompts, at(2)),
        ),
        (
            "no_input_reprompt",
            render::render(&reprompt, Language::EnUs, &prompts, at(2)),
        ),
        (
            "no_input_goodbye",
            render::render(&goodbye, Language::EnUs, &prompts, at(3)),
        ),
        (
            "not_verified_retry",
            render::render(&retry, Language::EnUs, &prompts, at(3)),
        ),
        (
            "not_verified_transfer",
            render::render(&transfer, Language::EnUs, &prompts, at(7)),
        ),
        (
            "verified_menu",
            render::render(&menu, Language::EnUs, &prompts, at(3)),
        ),
        (
            "routed_verified",
            render::render(&routed, Language::EnUs, &prompts, at(4)),
        ),
        (
            "subject_id_prompt",
            render::render(&unavailable, Language::EnUs, &prompts, at(4)),
        ),
        (
            "menu_invalid",
            render::render(&invalid_choice, Language::EnUs, &prompts, at(4)),
        ),
        (
            "restart_after_idle",
            render::render(&restart, Language::EnUs, &prompts, at(5)),
        ),
        (
            "repeat_step",
            render::render(&repeat, Language::EnUs, &prompts, at(2)),
        ),
        ("unknown_call", render::restart_at_incoming(&prompts, base)),
        ("fault_fallback", render::fallback(&prompts, Language::EnUs)),
        ("agent_fault_fallback", render::agent_fallback(&prompts)),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/twiml");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, twiml) in cases {
        let path = dir.join(format!("{name}.xml"));
        if update {
            std::fs::write(&path, &twiml).unwrap();
            continue;
        }
        let golden =
            std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
        assert_eq!(twiml, golden, "{name} differs from {}", path.display());
    }
}

/// The context of a verified caller routed from `at_menu` with menu 1.
fn at_menu_routed_context(at_menu: &pinline::flow::CallState) -> pinline::flow::QueueContext {
    let mut routed = at_menu.clone();
    routed.phase = pinline::flow::Phase::Routed(pinline::flow::QueueClass::Verified);
    routed.queue_context().expect("routed calls have a context")
}
