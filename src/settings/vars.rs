//! Reading one value from the lookup: raw or trimmed text, a whole number, an on/off
//! switch. Blank counts as unset. Each refusal is a [`SettingsError`] that quotes the value
//! and says what would be accepted.

use super::{Lookup, SettingsError};

/// The vars and secrets, read through the lookup.
pub struct Vars<'a> {
    lookup: Lookup<'a>,
}

impl<'a> Vars<'a> {
    pub fn new(lookup: Lookup<'a>) -> Self {
        Vars { lookup }
    }

    /// The value as set, untrimmed; `None` when unset.
    pub fn raw(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var)
    }

    /// The value, trimmed; `None` when unset or blank.
    pub fn text(&self, var: &'static str) -> Option<String> {
        self.raw(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A whole number (`unit` names what it counts, e.g. "seconds"); `None` when unset or
    /// blank. Anything else is refused with `hint`, which says what to set.
    pub fn number(&self, var: &'static str, unit: &str, hint: &str) -> Result<Option<u64>, SettingsError> {
        let Some(text) = self.text(var) else { return Ok(None) };
        match text.parse::<u64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(SettingsError::new(var, format!("{text:?} is not a whole number of {unit}; {hint}"))),
        }
    }

    /// A whole number of seconds, in milliseconds; `None` when unset or blank.
    pub fn seconds_as_ms(&self, var: &'static str, hint: &str) -> Result<Option<u64>, SettingsError> {
        self.number(var, "seconds", hint)?.map(|s| scaled(var, s, 1000, "seconds", hint)).transpose()
    }

    /// `on` or `off` (blank or unset: off). Only the exact word `on` turns a switch on, as
    /// before; any other word is refused rather than read as off.
    pub fn on_off(&self, var: &'static str) -> Result<bool, SettingsError> {
        match self.text(var).as_deref() {
            None | Some("off") => Ok(false),
            Some("on") => Ok(true),
            Some(other) => {
                Err(SettingsError::new(var, format!("{other:?} is neither \"on\" nor \"off\"; set one of them")))
            }
        }
    }
}

/// A lookup over fixed `(name, value)` pairs (tests, and anything that is not Workers).
pub fn lookup_in<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

/// `n * factor`, refused when that overflows (no limit is anywhere near it).
pub fn scaled(var: &'static str, n: u64, factor: u64, unit: &str, hint: &str) -> Result<u64, SettingsError> {
    n.checked_mul(factor).ok_or_else(|| SettingsError::new(var, format!("{n} {unit} is too large; {hint}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<T>(value: Option<&str>, read: impl FnOnce(&Vars) -> T) -> T {
        let value = value.map(str::to_owned);
        let lookup = move |name: &str| if name == "V" { value.clone() } else { None };
        read(&Vars::new(&lookup))
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        assert_eq!(with(None, |v| v.text("V")), None);
        assert_eq!(with(Some("  "), |v| v.text("V")), None);
        assert_eq!(with(Some(" x "), |v| v.text("V")), Some("x".into()));
        assert_eq!(with(Some(" x "), |v| v.raw("V")), Some(" x ".into()));
        assert_eq!(with(Some(" 42 "), |v| v.number("V", "things", "")), Ok(Some(42)));
        assert_eq!(with(Some(""), |v| v.number("V", "things", "")), Ok(None));
    }

    #[test]
    fn junk_numbers_are_refused_with_the_value_and_the_hint() {
        let e = with(Some("12MB"), |v| v.number("V", "megabytes", "set 100")).unwrap_err();
        assert_eq!(e.to_string(), "V: \"12MB\" is not a whole number of megabytes; set 100");
        assert!(with(Some("-1"), |v| v.number("V", "things", "")).is_err());
        assert!(with(Some("1.5"), |v| v.number("V", "things", "")).is_err());
    }

    #[test]
    fn seconds_become_milliseconds_without_overflow() {
        assert_eq!(with(Some("30"), |v| v.seconds_as_ms("V", "")), Ok(Some(30_000)));
        assert_eq!(with(Some("0"), |v| v.seconds_as_ms("V", "")), Ok(Some(0)));
        let huge = u64::MAX.to_string();
        assert!(with(Some(&huge), |v| v.seconds_as_ms("V", "")).unwrap_err().problem.contains("too large"));
    }

    #[test]
    fn switches_take_on_or_off_only() {
        assert_eq!(with(None, |v| v.on_off("V")), Ok(false));
        assert_eq!(with(Some(" on "), |v| v.on_off("V")), Ok(true));
        assert_eq!(with(Some("off"), |v| v.on_off("V")), Ok(false));
        assert!(with(Some("ON"), |v| v.on_off("V")).is_err(), "never read as on, as before; now also not as off");
        assert!(with(Some("true"), |v| v.on_off("V")).unwrap_err().to_string().starts_with("V: \"true\" is neither"));
    }
}
