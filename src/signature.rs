//! Request-signature validation for Twilio-compatible voice webhooks. This
//! module owns the `X-Twilio-Signature` algorithm (SignalWire's
//! `X-SignalWire-Signature` is the same computation keyed with the signing key
//! instead of the auth token): canonicalising the form parameters, computing
//! the HMAC-SHA1 over the URL and parameters, trying the port variants of the
//! URL that providers are known to sign, and comparing in constant time. It
//! deliberately knows nothing about HTTP: callers pass in the public URL the
//! provider called, the decoded form parameters and the header value.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::Output;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::{Choice, ConstantTimeEq};

type HmacSha1 = Hmac<Sha1>;

/// Length of a padded base64 HMAC-SHA1 (20 bytes). Anything else cannot be a
/// signature, so it is rejected before any decoding or allocation happens.
const SIGNATURE_LEN: usize = 28;

/// Holds a webhook signing secret (Twilio auth token or SignalWire signing
/// key) and signs or verifies requests with it.
#[derive(Clone)]
pub struct WebhookAuth {
    token: Vec<u8>,
}

impl WebhookAuth {
    /// Wraps the secret used to sign webhook requests.
    pub fn new(token: impl Into<Vec<u8>>) -> Self {
        Self {
            token: token.into(),
        }
    }

    /// Computes the signature the provider would send for `url` and `params`.
    pub fn sign(&self, url: &str, params: &[(String, String)]) -> String {
        sign(&self.token, url, params)
    }

    /// True when `signature` is valid for `url` (or a port variant of it).
    pub fn verify(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        is_valid(&self.token, url, params, signature)
    }
}

// Hand-written so the secret can never end up in logs via `{:?}`.
impl fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookAuth { token: <redacted> }")
    }
}

/// Computes the base64 signature for `url` and form `params` (order
/// irrelevant; names may repeat).
pub fn sign(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, &canonical_params(params)))
}

/// True when `signature` is valid for `url` or one of its port variants.
/// Empty, malformed or wrongly sized signatures are simply invalid.
pub fn is_valid(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Some(provided) = decode_signature(signature) else {
        return false;
    };
    let params = canonical_params(params);
    // Every variant is checked, without stopping early, so timing does not
    // reveal which URL form the attacker's guess was closest to.
    let mut matched = Choice::from(0);
    for variant in url_variants(url) {
        let expected = mac(auth_token, &variant, &params);
        matched |= expected.as_slice().ct_eq(&provided);
    }
    matched.into()
}

fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    if signature.len() != SIGNATURE_LEN {
        return None;
    }
    STANDARD.decode(signature).ok()
}

/// Sorts by name and then value (byte order, case-sensitive) and drops
/// duplicate pairs, which yields "distinct values sorted" for repeated names.
fn canonical_params(params: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fn mac(auth_token: &[u8], url: &str, params: &[(&str, &str)]) -> Output<HmacSha1> {
    // RFC 2104 HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha1::new_from_slice(auth_token).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes()
}

/// The URL variants to try: as given, port removed, default port added
/// (deduplicated). Providers differ in whether the port they sign matches the
/// one they called, so both forms have to be accepted.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some(parts) = UrlParts::parse(url) else {
        return variants;
    };
    let alternative = match parts.port {
        Some(_) => Some(parts.with_port(None)),
        None => default_port(parts.scheme).map(|port| parts.with_port(Some(port))),
    };
    if let Some(alternative) = alternative
        && alternative != url
    {
        variants.push(alternative);
    }
    variants
}

fn default_port(scheme: &str) -> Option<&'static str> {
    if scheme.eq_ignore_ascii_case("https") {
        Some("443")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("80")
    } else {
        None
    }
}

/// A URL split just far enough to swap its port. Every piece is a slice of
/// the original, so reassembling it never re-encodes anything.
struct UrlParts<'a> {
    scheme: &'a str,
    /// `user:pass@` including the `@`, or empty.
    userinfo: &'a str,
    /// Host name, IPv4 address or bracketed IPv6 literal.
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment exactly as given (may be empty).
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let (scheme, after_scheme) = url.split_once("://")?;
        // Guards against "://" that only appears later, e.g. in a query.
        if !is_scheme(scheme) {
            return None;
        }
        let authority_end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(authority_end);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => authority.split_at(at + 1),
            None => ("", authority),
        };
        let (host, port) = split_host_port(host_port)?;
        Some(Self {
            scheme,
            userinfo,
            host,
            port,
            rest,
        })
    }

    fn with_port(&self, port: Option<&str>) -> String {
        let port = port.map(|port| format!(":{port}")).unwrap_or_default();
        format!(
            "{}://{}{}{}{}",
            self.scheme, self.userinfo, self.host, port, self.rest
        )
    }
}

fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `host[:port]` or `[v6]:port`. Returns `None` for anything odd (no
/// host, non-numeric port) so such URLs are only ever tried as given.
fn split_host_port(host_port: &str) -> Option<(&str, Option<&str>)> {
    let host_end = if host_port.starts_with('[') {
        host_port.find(']')? + 1
    } else {
        host_port.find(':').unwrap_or(host_port.len())
    };
    let (host, tail) = host_port.split_at(host_end);
    if host.is_empty() {
        return None;
    }
    if tail.is_empty() {
        return Some((host, None));
    }
    let port = tail.strip_prefix(':')?;
    let numeric = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    numeric.then_some((host, Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const FIXTURE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/twilio-signature-vectors.json"
    ));

    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[derive(Deserialize)]
    struct Fixture {
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        auth_token: String,
        request_url: String,
        params: Vec<(String, String)>,
        signature: String,
        valid: bool,
    }

    fn vectors() -> Vec<Vector> {
        let fixture: Fixture = serde_json::from_str(FIXTURE).expect("fixture parses");
        assert!(!fixture.vectors.is_empty(), "fixture has no vectors");
        fixture.vectors
    }

    fn call_params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn judges_every_fixture_vector_as_the_fixture_expects() {
        for v in vectors() {
            let got = is_valid(
                v.auth_token.as_bytes(),
                &v.request_url,
                &v.params,
                &v.signature,
            );
            assert_eq!(got, v.valid, "vector {:?}", v.name);
        }
    }

    #[test]
    fn signing_some_url_variant_reproduces_every_valid_fixture_signature() {
        for v in vectors().into_iter().filter(|v| v.valid) {
            let token = v.auth_token.as_bytes();
            let signed = url_variants(&v.request_url)
                .iter()
                .any(|url| sign(token, url, &v.params) == v.signature);
            assert!(signed, "vector {:?}", v.name);
        }
    }

    #[test]
    fn signing_the_url_as_given_reproduces_the_other_valid_fixture_signatures() {
        // These were signed over a port variant, not the URL as given.
        const PORT_VARIANT_VECTORS: [&str; 3] = [
            "explicit non-default https port is stripped",
            "signed with :443 added",
            "http signed with :80 added",
        ];
        let as_given = vectors()
            .into_iter()
            .filter(|v| v.valid && !PORT_VARIANT_VECTORS.contains(&v.name.as_str()));
        for v in as_given {
            let signature = sign(v.auth_token.as_bytes(), &v.request_url, &v.params);
            assert_eq!(signature, v.signature, "vector {:?}", v.name);
        }
    }

    #[test]
    fn accepts_what_it_signs() {
        let signature = sign(TOKEN, URL, &call_params());
        assert!(is_valid(TOKEN, URL, &call_params(), &signature));
    }

    #[test]
    fn ignores_the_order_of_params() {
        let mut reversed = call_params();
        reversed.reverse();
        assert_eq!(
            sign(TOKEN, URL, &reversed),
            sign(TOKEN, URL, &call_params())
        );
    }

    #[test]
    fn signs_repeated_values_once_each_in_sorted_order() {
        let messy = pairs(&[("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]);
        let tidy = pairs(&[("Digits", "1234"), ("Digits", "5678")]);
        assert_eq!(sign(TOKEN, URL, &messy), sign(TOKEN, URL, &tidy));
    }

    #[test]
    fn rejects_a_changed_param_value() {
        let signature = sign(TOKEN, URL, &call_params());
        let mut tampered = call_params();
        tampered[2].1 = "9999".to_string();
        assert!(!is_valid(TOKEN, URL, &tampered, &signature));
    }

    #[test]
    fn rejects_a_missing_param() {
        let signature = sign(TOKEN, URL, &call_params());
        let mut fewer = call_params();
        fewer.remove(2);
        assert!(!is_valid(TOKEN, URL, &fewer, &signature));
    }

    #[test]
    fn rejects_an_added_param() {
        let signature = sign(TOKEN, URL, &call_params());
        let mut more = call_params();
        more.push(("Extra".to_string(), String::new()));
        assert!(!is_valid(TOKEN, URL, &more, &signature));
    }

    #[test]
    fn rejects_a_signature_made_with_another_token() {
        let signature = sign(b"54321", URL, &call_params());
        assert!(!is_valid(TOKEN, URL, &call_params(), &signature));
    }

    #[test]
    fn rejects_a_signature_made_for_another_path() {
        let signature = sign(TOKEN, "https://mycompany.com/other.php", &call_params());
        assert!(!is_valid(TOKEN, URL, &call_params(), &signature));
    }

    #[test]
    fn rejects_a_signature_made_for_a_port_that_is_not_a_variant() {
        let url = "https://mycompany.com/myapp.php";
        let signature = sign(
            TOKEN,
            "https://mycompany.com:8443/myapp.php",
            &call_params(),
        );
        assert!(!is_valid(TOKEN, url, &call_params(), &signature));
    }

    #[test]
    fn rejects_garbage_empty_and_very_long_signatures_without_panicking() {
        let valid = sign(TOKEN, URL, &call_params());
        let huge = "A".repeat(1 << 20);
        let too_long = format!("{valid}{valid}");
        let candidates = [
            "",
            " ",
            "WRONG_SIGNATURE",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            "ééééééééééééää",
            &valid[..valid.len() - 1],
            &too_long,
            &huge,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ];
        for signature in candidates {
            let shown: String = signature.chars().take(40).collect();
            let got = is_valid(TOKEN, URL, &call_params(), signature);
            assert!(!got, "accepted {shown:?}");
        }
    }

    #[test]
    fn adds_the_default_port_to_https_without_one() {
        assert_eq!(
            url_variants("https://example.com/voice?x=1"),
            [
                "https://example.com/voice?x=1",
                "https://example.com:443/voice?x=1"
            ]
        );
    }

    #[test]
    fn removes_an_explicit_https_port() {
        assert_eq!(
            url_variants("https://example.com:8443/voice"),
            [
                "https://example.com:8443/voice",
                "https://example.com/voice"
            ]
        );
        assert_eq!(
            url_variants("https://example.com:443/voice"),
            ["https://example.com:443/voice", "https://example.com/voice"]
        );
    }

    #[test]
    fn adds_the_default_port_to_http_without_one() {
        assert_eq!(
            url_variants("http://example.com/voice"),
            ["http://example.com/voice", "http://example.com:80/voice"]
        );
    }

    #[test]
    fn removes_an_explicit_http_port() {
        assert_eq!(
            url_variants("http://example.com:8080/voice"),
            ["http://example.com:8080/voice", "http://example.com/voice"]
        );
    }

    #[test]
    fn handles_a_url_with_no_path() {
        assert_eq!(
            url_variants("https://example.com"),
            ["https://example.com", "https://example.com:443"]
        );
        assert_eq!(
            url_variants("https://example.com:8443?x=1"),
            ["https://example.com:8443?x=1", "https://example.com?x=1"]
        );
        let signature = sign(TOKEN, "https://example.com:443", &call_params());
        assert!(is_valid(
            TOKEN,
            "https://example.com",
            &call_params(),
            &signature
        ));
    }

    #[test]
    fn handles_bracketed_ipv6_hosts() {
        assert_eq!(
            url_variants("https://[2001:db8::1]:8443/voice"),
            [
                "https://[2001:db8::1]:8443/voice",
                "https://[2001:db8::1]/voice"
            ]
        );
        assert_eq!(
            url_variants("http://[::1]/voice"),
            ["http://[::1]/voice", "http://[::1]:80/voice"]
        );
    }

    #[test]
    fn keeps_userinfo_and_the_rest_of_the_url_untouched() {
        assert_eq!(
            url_variants("https://u:p%40ss@example.com/a%20b?q=%2F#f"),
            [
                "https://u:p%40ss@example.com/a%20b?q=%2F#f",
                "https://u:p%40ss@example.com:443/a%20b?q=%2F#f"
            ]
        );
    }

    #[test]
    fn tries_only_the_url_as_given_when_it_cannot_be_parsed() {
        for url in [
            "/voice?next=https://example.com",
            "example.com/voice",
            "https://example.com:80a/voice",
            "https://:443/voice",
            "https://[::1/voice",
            "ftp://example.com/file",
        ] {
            assert_eq!(url_variants(url), [url], "url {url:?}");
        }
    }

    #[test]
    fn webhook_auth_verifies_what_it_signs() {
        let auth = WebhookAuth::new("12345");
        let signature = auth.sign(URL, &call_params());
        assert!(auth.verify(URL, &call_params(), &signature));
        assert!(!WebhookAuth::new("other").verify(URL, &call_params(), &signature));
    }

    #[test]
    fn webhook_auth_debug_does_not_print_the_token() {
        let shown = format!("{:?}", WebhookAuth::new("super-secret-token"));
        assert!(!shown.contains("super-secret-token"), "{shown}");
        assert_eq!(shown, "WebhookAuth { token: <redacted> }");
    }
}
