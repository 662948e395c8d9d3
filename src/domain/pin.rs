//! The Support PIN: four digits a caller keys in to prove who they are.

use std::fmt;

use rand::RngExt;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use subtle::ConstantTimeEq;

/// Number of digits in a Support PIN.
pub const PIN_DIGITS: usize = 4;

/// A Support PIN. Its `Debug` and `Display` never show the digits; the
/// only way to see them is [`SupportPin::reveal`], so every place that
/// shows a PIN is easy to find and audit.
#[derive(Clone, PartialEq, Eq)]
pub struct SupportPin([u8; PIN_DIGITS]);

/// Text that is not exactly four ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a Support PIN is exactly four digits")]
pub struct MalformedPin;

impl SupportPin {
    /// Parses exactly four ASCII digits.
    pub fn parse(text: &str) -> Result<Self, MalformedPin> {
        let bytes: [u8; PIN_DIGITS] = text.as_bytes().try_into().map_err(|_| MalformedPin)?;
        if bytes.iter().all(u8::is_ascii_digit) {
            Ok(Self(bytes))
        } else {
            Err(MalformedPin)
        }
    }

    /// Draws a PIN from the operating system's CSPRNG, uniform over
    /// 0000-9999 but never equal to `previous`.
    ///
    /// A failing OS generator cannot be worked around safely, so it aborts
    /// the operation by panicking inside `UnwrapErr`; on Linux getrandom
    /// only fails before the entropy pool is first seeded at boot.
    pub fn generate(previous: Option<&SupportPin>) -> Self {
        Self::generate_with(&mut UnwrapErr(SysRng), previous)
    }

    /// [`SupportPin::generate`] with a chosen generator, for tests.
    pub fn generate_with(rng: &mut impl rand::Rng, previous: Option<&SupportPin>) -> Self {
        loop {
            let candidate = Self::from_number(rng.random_range(0..10_000));
            // Redrawing (rather than shifting) keeps the result uniform
            // over the 9,999 values other than the previous PIN.
            if previous != Some(&candidate) {
                return candidate;
            }
        }
    }

    fn from_number(n: u16) -> Self {
        let mut digits = [b'0'; PIN_DIGITS];
        let mut rest = n;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        Self(digits)
    }

    /// Compares keyed-in digits with this PIN in constant time. Input of
    /// the wrong length still costs a full comparison, against a
    /// placeholder, so its rejection takes no less time.
    pub fn matches(&self, entered: &str) -> bool {
        let entered = entered.as_bytes();
        let right_length = entered.len() == PIN_DIGITS;
        let candidate: [u8; PIN_DIGITS] = entered.try_into().unwrap_or([0xff; PIN_DIGITS]);
        let equal = self.0.ct_eq(&candidate);
        bool::from(equal & subtle::Choice::from(u8::from(right_length)))
    }

    /// The digits, for the owner's view and nothing else.
    pub fn reveal(&self) -> &str {
        // Only ASCII digits are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The plaintext bytes, for encryption at rest.
    pub(crate) fn as_bytes(&self) -> &[u8; PIN_DIGITS] {
        &self.0
    }
}

impl fmt::Debug for SupportPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SupportPin(****)")
    }
}

impl fmt::Display for SupportPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_digits_parse_and_nothing_else() {
        assert_eq!(SupportPin::parse("0042").unwrap().reveal(), "0042");
        for text in ["", "123", "12345", "12a4", "١٢٣٤", " 123", "12.4"] {
            assert!(
                SupportPin::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn debug_and_display_hide_the_digits() {
        let pin = SupportPin::parse("4821").unwrap();
        assert!(!format!("{pin:?}").contains("4821"));
        assert!(!format!("{pin}").contains("4821"));
        assert!(!format!("{:?}", Some(&pin)).contains("48"));
    }

    #[test]
    fn matching_needs_the_exact_digits() {
        let pin = SupportPin::parse("4821").unwrap();
        assert!(pin.matches("4821"));
        for wrong in ["4820", "1284", "482", "48210", "", "4821#"] {
            assert!(!pin.matches(wrong), "{wrong:?} should not match");
        }
    }

    #[test]
    fn a_new_pin_never_equals_the_previous_one() {
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let previous = SupportPin::generate_with(&mut rng, None);
            let next = SupportPin::generate_with(&mut rng, Some(&previous));
            assert_ne!(previous, next);
        }
    }

    #[test]
    fn the_previous_pin_is_never_drawn_even_from_a_stuck_generator() {
        // A generator that keeps offering the previous value must not be
        // able to make generation return it.
        struct Stuck(u32);
        impl rand::TryRng for Stuck {
            type Error = std::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                self.0 += 1;
                // The first few draws are all zero, then anything.
                Ok(if self.0 < 50 {
                    0
                } else {
                    self.0.wrapping_mul(2_654_435_761)
                })
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(u64::from(self.try_next_u32()?))
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                dst.fill(0);
                Ok(())
            }
        }
        let zero = SupportPin::generate_with(&mut Stuck(0), None);
        let next = SupportPin::generate_with(&mut Stuck(0), Some(&zero));
        assert_ne!(zero, next);
    }

    /// Chi-square goodness of fit of OS-generated PINs against the uniform
    /// distribution over all 10,000 values.
    #[test]
    fn generated_pins_are_uniform_over_all_ten_thousand_values() {
        const DRAWS: usize = 500_000;
        let mut counts = vec![0u32; 10_000];
        for _ in 0..DRAWS {
            let pin = SupportPin::generate(None);
            let n: usize = pin.reveal().parse().unwrap();
            counts[n] += 1;
        }
        let chi2 = chi_square(&counts, DRAWS);
        // 9,999 degrees of freedom: mean 9,999, standard deviation about
        // 141. 10,600 is past four standard deviations, so a fair generator
        // fails this about once in 30,000 runs; one that skips or favours
        // values (say, a modulo bias or never drawing 0xxx) lands far above.
        assert!(
            chi2 < 10_600.0,
            "chi-square {chi2:.0} too high for uniform draws"
        );
        assert!(
            chi2 > 9_400.0,
            "chi-square {chi2:.0} too low: draws look rigged"
        );
        assert!(counts.iter().all(|&c| c > 0), "every value should occur");
    }

    #[test]
    fn chi_square_catches_a_biased_generator() {
        // The same statistic over a generator that never yields 0xxx must
        // fail, or the test above proves nothing.
        let mut rng = rand::rng();
        let mut counts = vec![0u32; 10_000];
        for _ in 0..500_000 {
            counts[rng.random_range(1_000..10_000)] += 1;
        }
        assert!(chi_square(&counts, 500_000) > 10_600.0);
    }

    fn chi_square(counts: &[u32], draws: usize) -> f64 {
        let expected = draws as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum()
    }
}
