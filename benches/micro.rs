//! Micro-benchmarks of the hot pieces of one webhook: rendering TwiML,
//! checking a signature, and one PIN validation with rotation (a committed
//! SQLite transaction on a real file).
//!
//! Run: `cargo bench --bench micro`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use pinline::clock::SystemClock;
use pinline::crypto::SecretKey;
use pinline::domain::account::{NewUser, Role};
use pinline::domain::lock::LockPolicy;
use pinline::flow;
use pinline::ivr::render;
use pinline::prompts::{Language, PromptCatalog};
use pinline::registry::{Attempt, Origin, Registry};
use pinline::storage::Db;

fn twiml(c: &mut Criterion) {
    let prompts = PromptCatalog::embedded().expect("the built-in prompts");
    let (_, greeting) = flow::start();
    let target = render::Target {
        base_url: "https://pinline.example.org",
        call_sid: "CA0123456789abcdef0123456789abcdef",
        step: 1,
    };
    c.bench_function("render the greeting TwiML", |b| {
        b.iter(|| render::render(black_box(&greeting), Language::EnUs, &prompts, target))
    });
}

fn signature(c: &mut Criterion) {
    let url = "https://pinline.example.org/voice/pin?step=2";
    let params: Vec<(String, String)> = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("From", "+14155550100"),
        ("To", "+18005550100"),
        ("CallStatus", "in-progress"),
        ("Direction", "inbound"),
        ("Digits", "4821"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signed = pinline::signature::sign(b"token", url, &params);
    c.bench_function("validate a webhook signature", |b| {
        b.iter(|| pinline::signature::is_valid(b"token", black_box(url), &params, &signed))
    });
}

fn validation(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a directory");
    let registry = Registry::new(
        Db::open(&dir.path().join("micro.db")).expect("a database"),
        Ok(SecretKey::generate()),
        Ok(SecretKey::generate()),
        LockPolicy::default(),
        Arc::new(SystemClock),
    )
    .expect("a registry");
    let practice = registry.add_practice("Micro").expect("a practice");
    let user = NewUser {
        user_id: None,
        role: Role::Staff,
        name: "Bench".into(),
        email: None,
        phones: vec![],
    };
    let user = registry
        .add_user(&practice.practice_id.to_string(), &user, &Origin::cli())
        .expect("a user");
    let id = user.user_id.to_string();
    // Each iteration also views the rotated PIN (one more committed
    // transaction); the figure covers both.
    let mut pin = registry
        .view_pin(user.user_id, &Origin::cli())
        .expect("a PIN")
        .reveal()
        .to_owned();
    c.bench_function("validate a PIN with rotation, then view the new one", |b| {
        b.iter(|| {
            let attempt = Attempt {
                user_id: &id,
                digits: &pin,
                origin: Origin::cli(),
                note: None,
            };
            black_box(registry.validate_pin(&attempt).expect("a verdict"));
            // The next iteration needs the rotated PIN.
            pin = registry
                .view_pin(user.user_id, &Origin::cli())
                .expect("a PIN")
                .reveal()
                .to_owned();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = twiml, signature, validation
}
criterion_main!(benches);
