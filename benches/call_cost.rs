//! The work of whole verified calls, in process and one step at a time:
//! incoming, user ID, PIN, menu `1` into the queue, and the status
//! callback, through `Ivr::answer` and the batching writer, on a
//! temporary database.
//!
//! Timing it on a shared machine says little; counting its instructions
//! does, so it is meant to run under callgrind, twice, and the difference
//! divided by the difference in calls is the cost of one call:
//!
//!     cargo bench --bench call_cost --no-run
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/c100 target/release/deps/call_cost-* 100
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/c600 target/release/deps/call_cost-* 600
//!
//! Each run prints its calls; `callgrind_annotate` prints each file's total
//! ("PROGRAM TOTALS"). Kernel work (the fsyncs, the log writes) is not
//! counted. Figures are in docs/PERFORMANCE.md.

use std::sync::Arc;

use pinline::clock::SystemClock;
use pinline::crypto::{PinCipher, SecretKey};
use pinline::domain::account::{NewUser, Role, UserId};
use pinline::domain::lock::LockPolicy;
use pinline::flow::Gather;
use pinline::ivr::{Hook, Ivr, IvrConfig, VoiceRequest};
use pinline::prompts::PromptCatalog;
use pinline::registry::{Origin, Registry};
use pinline::storage::Db;

const BASE_URL: &str = "http://127.0.0.1:8080";
const USERS: usize = 50;

fn main() {
    let calls: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("cost.db");
    let pin_key = SecretKey::generate();
    let registry = Arc::new(
        Registry::new(
            Db::open(&path).expect("the database"),
            Ok(pin_key.clone()),
            Ok(SecretKey::generate()),
            LockPolicy::default(),
            Arc::new(SystemClock),
        )
        .expect("a registry"),
    );
    let practice = registry.add_practice("Cost").expect("a practice");
    let users: Vec<UserId> = (0..USERS)
        .map(|i| {
            let user = NewUser {
                user_id: None,
                role: Role::Staff,
                name: format!("Caller {i}"),
                email: None,
                phones: vec![],
            };
            registry
                .add_user(&practice.practice_id.to_string(), &user, &Origin::cli())
                .expect("a user")
                .user_id
        })
        .collect();
    let mut config = IvrConfig::new(BASE_URL);
    config.caller_failures_per_hour = u32::MAX;
    let prompts = Arc::new(PromptCatalog::embedded().expect("the prompts"));
    let ivr = Arc::new(Ivr::new(
        registry.clone(),
        prompts,
        config,
        Arc::new(SystemClock),
    ));
    let cipher = PinCipher::new(&pin_key);
    let reader = rusqlite::Connection::open(&path).expect("a reader");

    let mut routed = 0;
    for i in 0..calls {
        let user = users[i % USERS];
        let row = pinline::storage::pins::get(&reader, user)
            .expect("a read")
            .expect("a PIN");
        let pin = cipher
            .open(user, row.version, &row.sealed)
            .expect("a PIN that opens");
        let call = format!("CA{i:032x}");
        let mut twiml = step(&ivr, &call, None, Hook::Incoming);
        for keys in [format!("{user}#"), pin.reveal().to_owned(), "1".to_owned()] {
            let hook = gather_hook(&twiml);
            twiml = step(&ivr, &call, Some(keys), hook);
        }
        if twiml.contains("<Conference") {
            routed += 1;
        }
        ivr.end_call(call, "completed".into())
            .wait()
            .expect("the call ended");
    }
    assert_eq!(routed, calls, "every call verified and routed");
    println!("{calls} calls");
}

fn step(ivr: &Arc<Ivr>, call: &str, digits: Option<String>, hook: Hook) -> String {
    let request = VoiceRequest {
        call_sid: call.to_owned(),
        from: Some("+15550001111".into()),
        to: Some("+18005550100".into()),
        digits,
        stir_verstat: None,
    };
    ivr.answer(request, hook).wait().expect("a step").twiml
}

/// The gather an answer's action URL names, with its step number.
fn gather_hook(twiml: &str) -> Hook {
    let start = twiml.find("action=\"").expect("a gather") + "action=\"".len();
    let url = &twiml[start..start + twiml[start..].find('"').expect("a closing quote")];
    let (path, step) = url
        .strip_prefix(BASE_URL)
        .and_then(|rest| rest.split_once("?step="))
        .expect("an action URL of this server");
    Hook::Gather {
        gather: Gather::from_path(path).expect("a gather route"),
        step: step.parse().expect("a step number"),
    }
}
