//! What a word before a period says about the period: the abbreviation lists per language.

use crate::CoreError;

/// The language whose abbreviations the splitter knows. Terminators of every script are
/// recognised whatever the language; the language only adds abbreviations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// No language given: English abbreviations, every script's terminators.
    #[default]
    Any,
    English,
    Spanish,
    French,
    German,
    Hindi,
    Chinese,
    Japanese,
}

impl Lang {
    /// Language codes [`Lang::parse`] accepts (the part before any `-` or `_` region).
    pub const CODES: &'static [&'static str] = &["de", "en", "es", "fr", "hi", "ja", "zh"];

    /// Parses an ISO 639-1 code, optionally with a region (`"en-US"`, `"pt_BR"`); case-insensitive.
    pub fn parse(code: Option<&str>) -> Result<Self, CoreError> {
        let Some(code) = code else {
            return Ok(Self::Any);
        };
        let base = code
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(match base.as_str() {
            "en" => Self::English,
            "es" => Self::Spanish,
            "fr" => Self::French,
            "de" => Self::German,
            "hi" => Self::Hindi,
            "zh" => Self::Chinese,
            "ja" => Self::Japanese,
            _ => return Err(CoreError::UnknownLanguage(code.to_owned())),
        })
    }

    /// The canonical code (`None` for [`Lang::Any`]).
    #[must_use]
    pub fn code(self) -> Option<&'static str> {
        match self {
            Self::Any => None,
            Self::English => Some("en"),
            Self::Spanish => Some("es"),
            Self::French => Some("fr"),
            Self::German => Some("de"),
            Self::Hindi => Some("hi"),
            Self::Chinese => Some("zh"),
            Self::Japanese => Some("ja"),
        }
    }

    fn titles(self) -> &'static [&'static str] {
        match self {
            Self::Spanish => SPANISH_TITLES,
            Self::French => FRENCH_TITLES,
            Self::German => GERMAN_TITLES,
            _ => &[],
        }
    }

    fn non_terminal(self) -> &'static [&'static str] {
        match self {
            Self::Spanish => SPANISH_NON_TERMINAL,
            Self::French => FRENCH_NON_TERMINAL,
            Self::German => GERMAN_NON_TERMINAL,
            _ => &[],
        }
    }
}

/// What a period after a word means, before looking at what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordKind {
    /// An ordinary word or number: the period ends the sentence unless a lower-case letter
    /// or continuing punctuation follows.
    Plain,
    /// A title or an abbreviation that is followed by a name or a phrase (Dr., Mt., e.g., vs.):
    /// never ends a sentence before the end of the stream.
    NonTerminal,
    /// An abbreviation used before numbers (p. 5, No. 7, Jan. 3): no end before a digit.
    BeforeNumber,
    /// A single capital letter: an initial (J. R. R. Tolkien), except the pronoun "I".
    Initial,
    /// The pronoun "I" after a lower-case word ("you and I."): ends like a plain word.
    Pronoun,
}

/// Titles before names, in lower case: never sentence ends.
const TITLES: &[&str] = &[
    "adm", "brig", "capt", "cmdr", "col", "dr", "drs", "fr", "gen", "gov", "hon", "lt", "maj",
    "messrs", "mme", "mr", "mrs", "ms", "mt", "mx", "pres", "prof", "rep", "rev", "sen", "sgt",
    "st", "supt",
];

/// Abbreviations that introduce what follows (vs. Smith, e.g. this, approx. 5).
const NON_TERMINAL: &[&str] = &[
    "al", "approx", "appt", "apt", "assn", "av", "ave", "cf", "dept", "esp", "incl", "viz", "vs",
];

/// Abbreviations that end sentences as often as they go on ("Acme Inc. in Ohio", "etc. are").
const OFTEN_FINAL: &[&str] = &[
    "bros", "co", "corp", "est", "etc", "inc", "jr", "llc", "ltd", "plc", "sr",
];

/// Abbreviations that usually precede a number.
const BEFORE_NUMBER: &[&str] = &[
    "apr", "art", "aug", "ch", "dec", "eq", "feb", "fig", "figs", "jan", "jul", "jun", "mar", "n°",
    "no", "nos", "nov", "nr", "oct", "op", "p", "para", "pp", "sec", "sep", "sept", "tel", "vol",
    "vols",
];

const SPANISH_TITLES: &[&str] = &[
    "d", "dña", "dra", "lic", "sr", "sra", "sres", "srta", "ud", "uds",
];
const SPANISH_NON_TERMINAL: &[&str] = &["aprox", "av", "avda", "ej", "pág", "págs", "tel"];
const FRENCH_TITLES: &[&str] = &["m", "me", "mgr", "mlle", "mlles", "mm", "mme", "mmes", "pr"];
const FRENCH_NON_TERMINAL: &[&str] = &["av", "bd", "cf", "env", "p", "vol"];
const GERMAN_TITLES: &[&str] = &["fr", "frl", "hr", "hrn", "prof", "dr"];
const GERMAN_NON_TERMINAL: &[&str] = &[
    "bzw", "ca", "d.h", "evtl", "ggf", "nr", "s.o", "s.u", "str", "u.a", "usw", "vgl", "z.b",
];

/// Strips quotes, brackets, bullets and markdown emphasis around a word.
pub fn core_word(word: &str) -> &str {
    word.trim_matches(super::chars::is_word_wrapper)
}

/// Classifies `word` (the text attached before a single period, wrappers stripped).
/// `prev_capitalised` says whether the word before it began with a capital letter.
#[must_use]
pub fn classify(word: &str, prev_capitalised: bool, lang: Lang) -> WordKind {
    // Long words are never abbreviations; checking the length first keeps this O(1).
    if word.is_empty() || word.len() > 24 {
        return WordKind::Plain;
    }
    let mut chars = word.chars();
    if let (Some(first), None) = (chars.next(), chars.next()) {
        if first.is_uppercase() {
            return if first == 'I' && !prev_capitalised {
                WordKind::Pronoun
            } else {
                WordKind::Initial
            };
        }
    }
    if is_dotted_lowercase(word) {
        // e.g. / i.e. / a.m. / p.m. introduce or qualify what follows. (Upper-case dotted
        // abbreviations such as "U.S." or "P.M." end sentences before a capital.)
        return WordKind::NonTerminal;
    }
    let mut lower = [0u8; 24];
    let lower = ascii_lower(word, &mut lower);
    let is = |list: &[&str]| list.contains(&lower);
    if is(TITLES) || is(lang.titles()) || is(NON_TERMINAL) || is(lang.non_terminal()) {
        WordKind::NonTerminal
    } else if is(BEFORE_NUMBER) {
        WordKind::BeforeNumber
    } else {
        WordKind::Plain
    }
}

/// Whether `word` is an abbreviation that often ends a sentence and as often goes on, so that
/// only the next word can tell (the splitter waits for it even when guessing ends eagerly).
#[must_use]
pub fn often_final(word: &str) -> bool {
    if word.is_empty() || word.len() > 24 {
        return false;
    }
    let mut lower = [0u8; 24];
    OFTEN_FINAL.contains(&ascii_lower(word, &mut lower))
}

/// `word` in ASCII lower case, written into `out` (words are at most 24 bytes here).
fn ascii_lower<'a>(word: &str, out: &'a mut [u8; 24]) -> &'a str {
    let bytes = &mut out[..word.len()];
    bytes.copy_from_slice(word.as_bytes());
    bytes.make_ascii_lowercase();
    // Lower-casing ASCII bytes keeps UTF-8 valid.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// "e.g", "i.e", "a.m": lower-case letters joined by periods (the final period is not part of
/// the word).
fn is_dotted_lowercase(word: &str) -> bool {
    let mut letters = 0;
    let mut expect_letter = true;
    for c in word.chars() {
        if expect_letter && c.is_lowercase() {
            letters += 1;
            expect_letter = false;
        } else if !expect_letter && c == '.' {
            expect_letter = true;
        } else {
            return false;
        }
    }
    letters >= 2 && !expect_letter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_words() {
        let en = Lang::Any;
        assert_eq!(classify("Dr", false, en), WordKind::NonTerminal);
        assert_eq!(classify("e.g", false, en), WordKind::NonTerminal);
        assert_eq!(classify("a.m", false, en), WordKind::NonTerminal);
        assert_eq!(classify("U.S", false, en), WordKind::Plain);
        assert_eq!(classify("P.M", false, en), WordKind::Plain);
        assert_eq!(classify("p", false, en), WordKind::BeforeNumber);
        assert_eq!(classify("N°", false, en), WordKind::BeforeNumber);
        assert_eq!(classify("E", true, en), WordKind::Initial);
        assert_eq!(classify("I", true, en), WordKind::Initial);
        assert_eq!(classify("I", false, en), WordKind::Pronoun);
        assert_eq!(classify("Inc", false, en), WordKind::Plain);
        assert_eq!(classify("house", false, en), WordKind::Plain);
        assert_eq!(classify("Sra", false, en), WordKind::Plain);
        assert_eq!(classify("Sra", false, Lang::Spanish), WordKind::NonTerminal);
        assert_eq!(classify("bzw", false, Lang::German), WordKind::NonTerminal);
        assert_eq!(classify("z.B", false, Lang::German), WordKind::NonTerminal);
        assert_eq!(classify("z.B", false, en), WordKind::Plain);
        assert_eq!(classify(&"x".repeat(40), false, en), WordKind::Plain);
    }

    #[test]
    fn strips_wrappers() {
        assert_eq!(core_word("(Dr"), "Dr");
        assert_eq!(core_word("**Inc**"), "Inc");
        assert_eq!(core_word("“e.g"), "e.g");
    }

    #[test]
    fn parses_languages() {
        assert_eq!(Lang::parse(None), Ok(Lang::Any));
        assert_eq!(Lang::parse(Some("en-US")), Ok(Lang::English));
        assert_eq!(Lang::parse(Some("ES")), Ok(Lang::Spanish));
        assert!(Lang::parse(Some("xx")).is_err());
        for code in Lang::CODES {
            assert_eq!(Lang::parse(Some(code)).unwrap().code(), Some(*code));
        }
    }
}
