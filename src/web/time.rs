//! Times as a person reads them: in their own time zone, and waits in
//! minutes and seconds.
//!
//! pinline keeps no time zone for its users. A page takes an IANA zone
//! name from its `tz` query value (a form on the page, or the optional
//! script that reads the browser's zone), remembers it in the session,
//! and shows UTC until one is chosen.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Zones offered in the page's list; any other IANA name may be typed.
pub const COMMON_ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "Europe/London",
    "Europe/Berlin",
];

/// An IANA zone name, if it is one.
pub fn parse_zone(text: &str) -> Option<Tz> {
    text.trim().parse().ok()
}

/// The zone a session chose, else UTC.
pub fn zone_or_utc(name: Option<&str>) -> Tz {
    name.and_then(parse_zone).unwrap_or(Tz::UTC)
}

/// A stored RFC 3339 time in `zone`, such as `2026-05-04 11:00:00 EDT`;
/// text that is not a time is shown as it is.
pub fn local(stored: &str, zone: Tz) -> String {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(at) => at
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => stored.to_owned(),
    }
}

/// How long since `stored` (RFC 3339), such as `3 min 07 s`.
pub fn waited(stored: &str, now: DateTime<Utc>) -> String {
    let seconds = DateTime::parse_from_rfc3339(stored)
        .map(|t| (now - t.to_utc()).num_seconds().max(0))
        .unwrap_or(0);
    if seconds < 60 {
        format!("{seconds} s")
    } else {
        format!("{} min {:02} s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_the_chosen_zone_with_its_abbreviation() {
        let at = "2026-05-04T15:00:00.000000Z";
        assert_eq!(local(at, Tz::UTC), "2026-05-04 15:00:00 UTC");
        let new_york = parse_zone("America/New_York").unwrap();
        assert_eq!(local(at, new_york), "2026-05-04 11:00:00 EDT");
        assert_eq!(local("garbage", new_york), "garbage");
    }

    #[test]
    fn only_iana_names_are_zones() {
        assert!(parse_zone("Europe/Berlin").is_some());
        assert!(parse_zone("Mars/Olympus_Mons").is_none());
        assert_eq!(zone_or_utc(Some("nonsense")), Tz::UTC);
        assert_eq!(zone_or_utc(None), Tz::UTC);
    }

    #[test]
    fn waits_read_in_minutes_and_seconds() {
        let now = DateTime::parse_from_rfc3339("2026-05-04T15:03:07Z")
            .unwrap()
            .to_utc();
        assert_eq!(waited("2026-05-04T15:00:00Z", now), "3 min 07 s");
        assert_eq!(waited("2026-05-04T15:03:00Z", now), "7 s");
        assert_eq!(waited("2026-05-04T15:04:00Z", now), "0 s");
    }
}
