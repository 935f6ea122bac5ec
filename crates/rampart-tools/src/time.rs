//! Time-zone arithmetic for `get_current_time` and `convert_time`, with the semantics of
//! the reference server `mcp-server-time` (IANA names, ISO 8601 with offset, seconds
//! precision, English weekday, DST flag, `time_difference` like `+5.75h`).

use jiff::{
    Timestamp, Zoned,
    civil::Date,
    tz::{TimeZone, TimeZoneDatabase},
};
use rampart_core::ToolError;
use schemars::JsonSchema;
use serde::Serialize;

/// One instant in one zone (`TimeResult` in mcp-server-time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct TimeResult {
    /// The IANA zone name, as given.
    pub(crate) timezone: String,
    /// ISO 8601 with seconds and numeric offset, e.g. `2026-11-22T06:11:53+05:45`.
    pub(crate) datetime: String,
    /// English weekday name, e.g. `Sunday`.
    pub(crate) day_of_week: String,
    /// Whether the zone observes daylight saving time at that instant.
    pub(crate) is_dst: bool,
}

/// A conversion (`TimeConversionResult` in mcp-server-time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct TimeConversionResult {
    /// The time in the source zone.
    pub(crate) source: TimeResult,
    /// The same instant in the target zone.
    pub(crate) target: TimeResult,
    /// Target offset minus source offset in hours, e.g. `+9.0h`, `-5.75h`.
    pub(crate) time_difference: String,
}

/// Looks up an IANA zone; the error names it.
pub(crate) fn zone(name: &str) -> Result<TimeZone, ToolError> {
    if name.trim().is_empty() {
        return Err(ToolError::InvalidArguments("timezone must not be empty".into()));
    }
    TimeZone::get(name).map_err(|_| {
        ToolError::Failed(format!("unknown timezone '{name}': use an IANA name such as 'Europe/Paris' or 'UTC'"))
    })
}

fn describe(name: &str, zoned: &Zoned) -> TimeResult {
    let is_dst = zoned.time_zone().to_offset_info(zoned.timestamp()).dst().is_dst();
    TimeResult {
        timezone: name.to_owned(),
        datetime: zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        day_of_week: zoned.strftime("%A").to_string(),
        is_dst,
    }
}

/// The current time in `name` at `now`.
pub(crate) fn current_time(name: &str, now: Timestamp) -> Result<TimeResult, ToolError> {
    Ok(describe(name, &now.to_zoned(zone(name)?)))
}

/// Parses `HH:MM` like strptime's `%H:%M` (one or two digits each, 24-hour).
fn parse_hh_mm(time: &str) -> Option<(i8, i8)> {
    let (hours, minutes) = time.split_once(':')?;
    let field = |s: &str, max: i8| -> Option<i8> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<i8>().ok().filter(|v| *v <= max)
    };
    Some((field(hours, 23)?, field(minutes, 59)?))
}

/// Converts `time` (HH:MM, today in the source zone as of `now`) between zones.
pub(crate) fn convert_time(
    source_name: &str,
    time: &str,
    target_name: &str,
    now: Timestamp,
) -> Result<TimeConversionResult, ToolError> {
    let source_zone = zone(source_name)?;
    let target_zone = zone(target_name)?;
    let (hours, minutes) = parse_hh_mm(time).ok_or_else(|| {
        ToolError::InvalidArguments(format!("invalid time '{time}': expected HH:MM in 24-hour format"))
    })?;
    let today: Date = now.to_zoned(source_zone.clone()).date();
    let source = today
        .at(hours, minutes, 0, 0)
        .to_zoned(source_zone)
        .map_err(|e| ToolError::Failed(format!("cannot place {time} in {source_name}: {e}")))?;
    let target = source.with_time_zone(target_zone);
    let difference_seconds = target.offset().seconds() - source.offset().seconds();
    Ok(TimeConversionResult {
        source: describe(source_name, &source),
        target: describe(target_name, &target),
        time_difference: format_hours(difference_seconds),
    })
}

/// `+9.0h`, `-5.75h`, `+0.0h`: Python's `f"{hours:+}h"` for a float.
fn format_hours(seconds: i32) -> String {
    let hours = f64::from(seconds) / 3600.0;
    if seconds % 3600 == 0 { format!("{hours:+.1}h") } else { format!("{hours:+}h") }
}

/// Checks that `name` is a zone, as [`zone`] does, looking first in jiff's bundled copy
/// of the database (static data): the system's copy lists its whole zoneinfo directory on
/// first use (~0.4 ms), which a start should not pay for a check; a name only the system
/// knows (newer tzdata) is still found there.
///
/// # Errors
/// [`zone`]'s.
pub(crate) fn check_zone(name: &str) -> Result<(), ToolError> {
    if TimeZoneDatabase::bundled().get(name).is_ok() {
        return Ok(());
    }
    zone(name).map(drop)
}

/// The zone used when a tool is called without one: configured, else the system's IANA
/// name, else `UTC`. The system's name is read from `TZ` or the `/etc/localtime` link
/// when the bundled database knows it (see [`check_zone`]), else found by jiff in the
/// system's database (`TimeZone::try_system`).
pub(crate) fn local_zone_name(configured: Option<&str>) -> String {
    if let Some(name) = configured {
        return name.to_owned();
    }
    named_system_zone()
        .or_else(|| TimeZone::try_system().ok().and_then(|tz| tz.iana_name().map(str::to_owned)))
        .unwrap_or_else(|| "UTC".into())
}

/// The zone `TZ` or `/etc/localtime` names, see [`zone_named_by`].
fn named_system_zone() -> Option<String> {
    let tz = std::env::var("TZ").ok();
    let link = if tz.is_none() { std::fs::read_link("/etc/localtime").ok() } else { None };
    zone_named_by(tz.as_deref(), link.as_deref())
}

/// The zone `tz` (the `TZ` variable) names (`Europe/Paris`, `:Europe/Paris`), or else
/// the one `localtime` (the `/etc/localtime` link's target) points to
/// (`…/zoneinfo/Europe/Paris`), by its name in the bundled database; `None` for anything
/// else (a path in `TZ`, a POSIX rule, a link outside a zoneinfo directory), which jiff
/// reads instead.
fn zone_named_by(tz: Option<&str>, localtime: Option<&std::path::Path>) -> Option<String> {
    let name = match tz {
        Some(tz) => tz.strip_prefix(':').unwrap_or(tz),
        None => localtime?.to_str()?.rsplit_once("zoneinfo/")?.1,
    };
    TimeZoneDatabase::bundled().get(name).ok()?.iana_name().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(iso: &str) -> Timestamp {
        iso.parse().unwrap()
    }

    #[test]
    fn current_time_table() {
        let now = at("2026-11-22T00:26:53Z");
        let cases = [
            ("Europe/Paris", "2026-11-22T01:26:53+01:00", "Sunday", false),
            ("Asia/Kathmandu", "2026-11-22T06:11:53+05:45", "Sunday", false),
            ("UTC", "2026-11-22T00:26:53+00:00", "Sunday", false),
            ("Australia/Adelaide", "2026-11-22T10:56:53+10:30", "Sunday", true),
            ("America/New_York", "2026-11-21T19:26:53-05:00", "Saturday", false),
        ];
        for (zone, datetime, weekday, dst) in cases {
            let got = current_time(zone, now).unwrap();
            assert_eq!(
                (got.datetime.as_str(), got.day_of_week.as_str(), got.is_dst),
                (datetime, weekday, dst),
                "{zone}"
            );
        }
    }

    #[test]
    fn time_difference_table() {
        let now = at("2026-11-22T00:00:00Z");
        let cases = [
            ("Europe/London", "Asia/Tokyo", "+9.0h"),
            ("America/New_York", "America/Los_Angeles", "-3.0h"),
            ("UTC", "UTC", "+0.0h"),
            ("UTC", "Asia/Kathmandu", "+5.75h"),
            ("Asia/Kathmandu", "UTC", "-5.75h"),
            ("Asia/Tokyo", "Australia/Eucla", "-0.25h"),
            ("UTC", "Asia/Kolkata", "+5.5h"),
        ];
        for (source, target, expected) in cases {
            assert_eq!(
                convert_time(source, "12:00", target, now).unwrap().time_difference,
                expected,
                "{source}->{target}"
            );
        }
    }

    #[test]
    fn conversion_lands_on_the_next_day() {
        let result = convert_time("UTC", "23:30", "Pacific/Kiritimati", at("2026-11-22T08:00:00Z")).unwrap();
        assert_eq!(result.source.datetime, "2026-11-22T23:30:00+00:00");
        assert_eq!(result.target.datetime, "2026-11-23T13:30:00+14:00");
        assert_eq!(result.target.day_of_week, "Monday");
    }

    #[test]
    fn time_parsing_table() {
        let cases = [
            ("09:05", Some((9, 5))),
            ("9:5", Some((9, 5))),
            ("23:59", Some((23, 59))),
            ("24:00", None),
            ("25:00", None),
            ("12:60", None),
            ("12:00:30", None),
            (" 12:00", None),
            ("noon", None),
            ("", None),
            ("-1:00", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_hh_mm(input), expected, "{input:?}");
        }
    }

    #[test]
    fn the_system_zone_is_named_without_the_system_database() {
        let path = |link: &'static str| Some(std::path::Path::new(link));
        let cases = [
            (Some("Europe/Paris"), None, Some("Europe/Paris")),
            (Some(":Asia/Tokyo"), path("/usr/share/zoneinfo/UTC"), Some("Asia/Tokyo")),
            (Some("america/new_york"), None, Some("America/New_York")),
            (Some("CET-1CEST,M3.5.0,M10.5.0/3"), None, None),
            (Some("/usr/share/zoneinfo/Europe/Paris"), None, None),
            (Some("Mars/Olympus"), None, None),
            (None, path("/usr/share/zoneinfo/America/Sao_Paulo"), Some("America/Sao_Paulo")),
            (None, path("../usr/share/zoneinfo/Etc/UTC"), Some("Etc/UTC")),
            (None, path("/etc/localtime.copy"), None),
            (None, None, None),
        ];
        for (tz, link, expected) in cases {
            assert_eq!(zone_named_by(tz, link).as_deref(), expected, "TZ={tz:?} link={link:?}");
        }
    }

    #[test]
    fn the_local_zone_is_the_one_jiff_finds() {
        let jiff = TimeZone::try_system().ok().and_then(|tz| tz.iana_name().map(str::to_owned));
        assert_eq!(local_zone_name(None), jiff.unwrap_or_else(|| "UTC".into()));
        assert_eq!(local_zone_name(Some("Asia/Kathmandu")), "Asia/Kathmandu");
    }

    #[test]
    fn zones_are_checked_in_either_database() {
        for name in ["Europe/Paris", "UTC", "asia/kolkata"] {
            assert!(check_zone(name).is_ok(), "{name}");
        }
        let error = check_zone("Mars/Olympus").unwrap_err().to_string();
        assert!(error.contains("unknown timezone 'Mars/Olympus'"), "{error}");
    }

    #[test]
    fn unknown_zone_is_named() {
        let error = current_time("Mars/Olympus", Timestamp::now()).unwrap_err().to_string();
        assert!(error.contains("unknown timezone 'Mars/Olympus'"), "{error}");
    }
}
