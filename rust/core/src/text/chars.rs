//! Character classes the splitter and `speakable` decide on.

/// Ends a sentence in every context: CJK full stops and marks, Indic dandas, and the stops of
/// other scripts that are never used inside numbers, abbreviations or URLs.
pub fn is_strong_terminator(c: char) -> bool {
    matches!(
        c,
        '。' | '！' | '？' | '｡' | '।' | '॥' | '؟' | '۔' | '።' | '፧' | '։' | '။' | '។'
    )
}

/// Terminal punctuation: the Latin stops (which may also be internal: "3.5", "e.g.") and the
/// strong ones.
pub fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '‼' | '⁇' | '⁈' | '⁉') || is_strong_terminator(c)
}

/// May follow terminal punctuation and still belong to the sentence: closing quotes and
/// brackets (straight quotes count here; after a space they open instead).
pub fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | '”'
            | '’'
            | '»'
            | '›'
            | ')'
            | ']'
            | '}'
            | '」'
            | '』'
            | '）'
            | '】'
            | '〕'
            | '》'
            | '〉'
            | '*'
            | '_'
    )
}

/// Punctuation that continues a sentence when it follows a stop and a space.
pub fn is_continuing_punct(c: char) -> bool {
    matches!(
        c,
        ',' | ';' | ':' | ')' | ']' | '}' | '”' | '’' | '»' | '%' | '、' | '，'
    )
}

/// Clause punctuation after which a long sentence may be cut when followed by a space.
pub fn is_clause_punct(c: char) -> bool {
    matches!(c, ',' | ';' | ':')
}

/// Clause punctuation after which a cut needs no space (CJK commas and dashes).
pub fn is_clause_mark(c: char) -> bool {
    matches!(c, '，' | '、' | '；' | '：' | '—' | '–')
}

/// List bullets that start a new item wherever they stand after a space.
pub fn is_bullet(c: char) -> bool {
    matches!(
        c,
        '•' | '‣' | '⁃' | '◦' | '▪' | '▫' | '●' | '○' | '■' | '□' | '➢' | '►'
    )
}

/// Characters that may wrap a word without being part of it (for abbreviation lookup).
pub fn is_word_wrapper(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | '“'
            | '”'
            | '‘'
            | '’'
            | '«'
            | '»'
            | '('
            | '['
            | '{'
            | '¿'
            | '¡'
            | '*'
            | '_'
            | '`'
            | '~'
    ) || is_bullet(c)
}

/// Han, kana and Hangul: scripts written without spaces between sentences.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Opens a quotation, a parenthesis or a Spanish question or exclamation.
pub fn is_opener(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | '“'
            | '‘'
            | '«'
            | '‹'
            | '„'
            | '('
            | '['
            | '{'
            | '¿'
            | '¡'
            | '「'
            | '『'
            | '（'
            | '【'
    )
}

/// Whitespace as Python's `str.isspace` sees it: Unicode `White_Space` plus the information
/// separators U+001C..U+001F, so trimmed output matches `str.strip()` on the Python side.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1C}'..='\u{1F}')
}

/// `text` without leading and trailing [`is_space`] characters.
pub fn trim(text: &str) -> &str {
    text.trim_matches(is_space)
}
