//! The softphone's executor against the real pinline server, in process,
//! over real HTTP, on a temporary database: what a caller hears on a
//! verified call and on a wrong PIN.

use std::sync::Arc;

use pinline::clock::SystemClock;
use pinline::crypto::SecretKey;
use pinline::domain::account::{NewUser, PhoneNumber, Role, User};
use pinline::domain::lock::LockPolicy;
use pinline::ivr::{Ivr, IvrConfig};
use pinline::prompts::PromptCatalog;
use pinline::registry::{Origin, Registry};
use pinline::server::{self, AppState};
use pinline::softphone::{self, CallSetup, CallSummary, EndReason, HttpTransport, ScriptedKeypad};
use pinline::storage::Db;

const TOKEN: &str = "softphone-test-token";
const GREETING: &str = "Thank you for calling support.";
const VERIFIED: &str = "You're verified";
const RETRY: &str = "don't match our records";

/// A running phone line: the server on an ephemeral port over a temporary
/// database. Dropping it stops the server.
struct Line {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Line {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(
            Registry::new(
                Db::open(&dir.path().join("line.db")).unwrap(),
                Ok(SecretKey::generate()),
                Ok(SecretKey::generate()),
                LockPolicy::default(),
                Arc::new(SystemClock),
            )
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let prompts = PromptCatalog::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("voice-prompts"),
        )
        .unwrap();
        let ivr = Ivr::new(
            registry.clone(),
            Arc::new(prompts),
            IvrConfig::new(&base),
            Arc::new(SystemClock),
        );
        let state = AppState::new(ivr, TOKEN, &base);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            _dir: dir,
            registry,
            base,
            _stop: stop,
        }
    }

    fn provider(&self) -> User {
        let practice = self.registry.add_practice("Bayview Pediatrics").unwrap();
        let user = NewUser {
            user_id: None,
            role: Role::Provider,
            name: "Morgan Ellis".into(),
            email: None,
            phones: vec![PhoneNumber::parse("+15551230001").unwrap()],
        };
        self.registry
            .add_user(&practice.practice_id.to_string(), &user, &Origin::cli())
            .unwrap()
    }

    fn pin(&self, user: &User) -> String {
        let pin = self
            .registry
            .view_pin(user.user_id, &Origin::cli())
            .unwrap();
        pin.reveal().to_owned()
    }

    /// Calls the line with scripted keys; returns how it ended and the
    /// transcript.
    async fn call(&self, keys: &str) -> (CallSummary, String) {
        let url = format!("{}/voice/incoming", self.base);
        let setup = CallSetup::new(&url, TOKEN).unwrap();
        let mut transport = HttpTransport::new().unwrap();
        let mut keypad = ScriptedKeypad::parse(keys).unwrap();
        let mut out = Vec::new();
        let placed = softphone::run(&setup, &mut transport, &mut keypad, &mut out).await;
        let transcript = String::from_utf8(out).unwrap();
        match placed {
            Ok(summary) => (summary, transcript),
            Err(error) => panic!("{error}\n{transcript}"),
        }
    }
}

#[tokio::test]
async fn a_verified_call_hears_the_menu_and_waits_in_the_queue() {
    let line = Line::start().await;
    let user = line.provider();
    let pin = line.pin(&user);
    let (summary, transcript) = line.call(&format!("{}#,{pin},1", user.user_id)).await;

    assert!(transcript.contains(GREETING), "{transcript}");
    let verified = transcript.find(VERIFIED).expect(VERIFIED);
    let menu = transcript.find("press 1").expect("the menu");
    assert!(verified < menu, "{transcript}");
    // Waiting alone in its own conference room, hearing the hold loop.
    assert!(transcript.contains("[conference pinline-"), "{transcript}");
    assert!(transcript.contains("number 1 in line"), "{transcript}");
    assert!(
        matches!(summary.ended, EndReason::InConference(ref room) if room.starts_with("pinline-CA")),
        "{:?}",
        summary.ended
    );
    assert_ne!(line.pin(&user), pin, "the PIN rotated after use");
}

#[tokio::test]
async fn a_wrong_pin_hears_that_it_does_not_match() {
    let line = Line::start().await;
    let user = line.provider();
    let pin = line.pin(&user);
    let wrong = format!("{:04}", (pin.parse::<u32>().unwrap() + 1) % 10_000);
    let (summary, transcript) = line.call(&format!("{}#,{wrong}", user.user_id)).await;

    assert!(transcript.contains(RETRY), "{transcript}");
    assert!(!transcript.contains(VERIFIED), "{transcript}");
    // The keys ran out at the next gather: the caller hung up.
    assert_eq!(summary.ended, EndReason::CallerHungUp);
    assert_eq!(line.pin(&user), pin, "a failed attempt leaves the PIN");
}
