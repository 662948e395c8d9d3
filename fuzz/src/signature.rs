//! The webhook signature check with arbitrary tokens, URLs, parameters
//! and signatures: it never panics, what `sign` makes verifies whatever
//! the parameter order, and a changed parameter, token or signature does
//! not.
//!
//! Input format (so seeds can be real request vectors): the auth token,
//! the URL and the signature on one line each, then the form-encoded
//! parameters.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pinline::signature::{WebhookAuth, is_valid, sign};

/// One signature check, as described by the input.
pub struct Vector<'a> {
    /// The signing secret.
    pub token: &'a [u8],
    /// The URL the provider called.
    pub url: String,
    /// The header value.
    pub signature: String,
    /// The decoded form parameters, in order.
    pub params: Vec<(String, String)>,
}

impl<'a> Vector<'a> {
    /// Splits the input into its four parts; missing parts are empty.
    pub fn parse(data: &'a [u8]) -> Self {
        let mut lines = data.splitn(4, |b| *b == b'\n');
        let mut next = || lines.next().unwrap_or_default();
        let token = next();
        let url = String::from_utf8_lossy(next()).into_owned();
        let signature = String::from_utf8_lossy(next()).into_owned();
        let params = form_urlencoded::parse(next()).into_owned().collect();
        Self {
            token,
            url,
            signature,
            params,
        }
    }
}

pub fn check(data: &[u8]) {
    let Vector {
        token,
        url,
        signature,
        params,
    } = Vector::parse(data);

    // The signature given, right or wrong, is judged without regard to
    // the order of the parameters.
    let judged = is_valid(token, &url, &params, &signature);
    let mut reversed = params.clone();
    reversed.reverse();
    assert_eq!(judged, is_valid(token, &url, &reversed, &signature));
    assert_eq!(
        judged,
        WebhookAuth::new(token).verify(&url, &params, &signature)
    );

    let made = sign(token, &url, &params);
    assert_eq!(made.len(), 28, "a base64 HMAC-SHA1 is 28 characters");
    assert!(
        is_valid(token, &url, &params, &made),
        "own signature refused"
    );
    assert!(is_valid(token, &url, &reversed, &made), "order mattered");

    // Appending to the value that sorts last lengthens what is signed by
    // one byte whatever the URL variant, so no variant can match.
    if let Some(last) = params.iter().max().cloned() {
        let changed: Vec<(String, String)> = params
            .iter()
            .map(|pair| {
                if *pair == last {
                    (pair.0.clone(), format!("{}x", pair.1))
                } else {
                    pair.clone()
                }
            })
            .collect();
        assert!(
            !is_valid(token, &url, &changed, &made),
            "a changed parameter still verified"
        );
    }
    let mut added = params.clone();
    added.push(("Tampered".to_owned(), "1".to_owned()));
    if !params.contains(&added[added.len() - 1]) {
        let widened = sign(token, &url, &added);
        assert_ne!(widened, made, "an added parameter changed nothing");
    }

    // HMAC pads short keys with zero bytes, so only a non-zero byte is
    // sure to make another key.
    let mut other = token.to_vec();
    other.push(b'x');
    assert!(
        !is_valid(&other, &url, &params, &made),
        "another token verified"
    );

    let mut raw = STANDARD.decode(&made).expect("sign makes base64");
    let bit = data.len() % (raw.len() * 8);
    raw[bit / 8] ^= 1 << (bit % 8);
    let flipped = STANDARD.encode(&raw);
    assert!(
        !is_valid(token, &url, &params, &flipped),
        "a flipped bit verified"
    );

    // Providers sign `https://host/...` with or without `:443`; both
    // spellings must verify against the other.
    if let Some(with_port) = with_default_port(&url) {
        let signed_with_port = sign(token, &with_port, &params);
        assert!(
            is_valid(token, &url, &params, &signed_with_port),
            "{with_port} signed, {url} refused"
        );
        assert!(
            is_valid(token, &with_port, &params, &made),
            "{url} signed, {with_port} refused"
        );
    }
}

/// `https://host/rest` as `https://host:443/rest`, for plain host names
/// only (nothing the URL parser could read another way).
fn with_default_port(url: &str) -> Option<String> {
    let host_and_rest = url.strip_prefix("https://")?;
    let end = host_and_rest
        .find(['/', '?', '#'])
        .unwrap_or(host_and_rest.len());
    let (host, rest) = host_and_rest.split_at(end);
    let plain = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    plain.then(|| format!("https://{host}:443{rest}"))
}
