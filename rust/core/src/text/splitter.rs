//! `SentenceSplitter`: LLM tokens in, sentences out, each as soon as its end is certain.
//!
//! The splitter is a character-at-a-time state machine. Every character of a push is looked
//! at once; the only look-back is at the word just before a terminator (bounded: long words
//! are never abbreviations), so a push costs O(token length) however long the sentence is.
//!
//! Decisions, in the order they are taken:
//!
//! * A run of terminators (`.`, `!`, `?`, `…`, and the spaced ellipsis `. . .`) with any
//!   closing quotes or brackets after it is a *candidate* end. If a non-space character
//!   follows with no space between, the run was internal ("3.5", "e.g", "Jr.'s", "mean...see")
//!   unless it was a strong terminator of a script without spaces (`。`, `！`, `।`).
//! * Otherwise the first non-space character decides: lower case or continuing punctuation
//!   (`,` `;` `)`) never starts a sentence; after `?` or `!` anything else does; after a single
//!   period the word before it decides (titles and e.g./i.e./a.m. never end a sentence,
//!   initials do not except the pronoun "I" after a lower-case word, p./No./Jan. do not before
//!   a digit); after an ellipsis a capital other than "I" does, and after four dots any
//!   capital.
//! * List items, bullets and markdown headings are boundaries too: a bullet after a space, a
//!   marker (`-`, `*`, `#`, `1.`, `1)`) at the start of a line, the next marker of a list that
//!   a sentence began ("1. First 2. Second", "a. One b. Two"), a blank line, and the end of a
//!   heading line.
//! * A fenced code block (a line opening with three backticks or tildes, up to the line that
//!   closes it) is one piece, with no boundary inside, so `speakable` can drop it whole.
//! * A sentence longer than `max_chars` is cut at its last clause boundary (`,` `;` `:` or a
//!   dash), else its last space, else where it is. Code blocks are never cut.

use super::abbreviations::{classify, core_word, often_final, Lang, WordKind};
use super::chars::{
    is_bullet, is_cjk, is_clause_mark, is_clause_punct, is_closer, is_continuing_punct, is_opener,
    is_space, is_strong_terminator, is_terminator, trim,
};
use crate::CoreError;

/// How a [`SentenceSplitter`] groups text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitterConfig {
    /// A sentence with fewer characters (after trimming) is not released alone but joined
    /// to the next one.
    pub min_chars: usize,
    /// A sentence longer than this is cut at a clause boundary so the TTS is never starved.
    pub max_chars: usize,
    /// First-chunk mode: the first piece of a stream is released at its first clause boundary
    /// (a comma, semicolon, colon or dash) once it has at least this many characters.
    pub first_clause_chars: Option<usize>,
    /// Eager first end: the first piece of a stream is released at a terminator that ends a
    /// push when only an unusual continuation ("Sure. so", "Visit example.com") could make it
    /// internal, instead of waiting for the next token to confirm it.
    pub eager_first_end: bool,
    /// The language whose abbreviations are known.
    pub lang: Lang,
}

impl SplitterConfig {
    /// Default `min_chars`: every sentence is released as soon as it ends.
    pub const DEFAULT_MIN_CHARS: usize = 0;
    /// Default `max_chars`: about 20 seconds of speech.
    pub const DEFAULT_MAX_CHARS: usize = 300;

    /// Checks the limits against each other.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.max_chars == 0 {
            return Err(CoreError::InvalidArgument(
                "max_chars must be at least 1 (it is the longest piece handed to the TTS); \
                 the default is 300"
                    .into(),
            ));
        }
        if self.min_chars > self.max_chars {
            return Err(CoreError::InvalidArgument(format!(
                "min_chars ({}) must not exceed max_chars ({}); lower min_chars or raise max_chars",
                self.min_chars, self.max_chars
            )));
        }
        if let Some(first) = self.first_clause_chars {
            if first > self.max_chars {
                return Err(CoreError::InvalidArgument(format!(
                    "first_clause_chars ({first}) must not exceed max_chars ({}); \
                     lower first_clause_chars or raise max_chars",
                    self.max_chars
                )));
            }
        }
        Ok(())
    }
}

impl Default for SplitterConfig {
    fn default() -> Self {
        Self {
            min_chars: Self::DEFAULT_MIN_CHARS,
            max_chars: Self::DEFAULT_MAX_CHARS,
            first_clause_chars: None,
            eager_first_end: false,
            lang: Lang::Any,
        }
    }
}

/// How a list item is numbered: `1.`, `1.)` or `1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerStyle {
    Dot,
    DotParen,
    Paren,
}

/// A list marker: `3.`, `c)`, `10.)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marker {
    /// The number, or the letter as `u16`.
    value: u16,
    alpha: bool,
    style: MarkerStyle,
}

impl Marker {
    /// Parses a whole token (bullets in front allowed): 1–3 digits or one lower-case ASCII
    /// letter, then `.`, `.)` or `)`.
    fn parse(token: &str) -> Option<Self> {
        let token = token.trim_start_matches(is_bullet);
        let (body, style) = if let Some(body) = token.strip_suffix(".)") {
            (body, MarkerStyle::DotParen)
        } else if let Some(body) = token.strip_suffix('.') {
            (body, MarkerStyle::Dot)
        } else {
            (token.strip_suffix(')')?, MarkerStyle::Paren)
        };
        let bytes = body.as_bytes();
        if (1..=3).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_digit) {
            let value = body.parse().ok()?;
            Some(Self {
                value,
                alpha: false,
                style,
            })
        } else if bytes.len() == 1 && bytes[0].is_ascii_lowercase() {
            Some(Self {
                value: u16::from(bytes[0]),
                alpha: true,
                style,
            })
        } else {
            None
        }
    }

    fn next(self) -> Self {
        Self {
            value: self.value + 1,
            ..self
        }
    }
}

/// A run of terminal punctuation (and the closers after it) waiting for what follows.
// Independent facts about one run of punctuation, not the states of a machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// Offset of the first terminator.
    start: usize,
    /// Offset just after the last terminator or closer: the sentence end if it is one.
    end: usize,
    /// Start of the word the run is attached to (`None` after a space: "word . . .").
    word: Option<usize>,
    dots: u32,
    /// `?`, `!` or another non-period terminator.
    other: bool,
    /// The ellipsis character `…`.
    ellipsis: bool,
    strong: bool,
    closers: bool,
    /// Dots separated by spaces (". . .").
    spaced: bool,
    /// An attached period followed by spaced dots ("word. . . ."): the period ends the
    /// sentence and the ellipsis starts the next one.
    first_dot_spaced: bool,
    /// Inside brackets ("[...]"): an omission, never an end.
    bracketed: bool,
    /// Whitespace seen after `end`.
    space: bool,
    newline: bool,
}

/// State of the sentence being built (reset at every boundary).
#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    /// A letter or digit has been seen.
    content: bool,
    /// Completed words (bullets not counted).
    words: u32,
    /// Began with a markdown heading marker: the end of the line ends it.
    heading: bool,
    /// Last offset where a long sentence may be cut after clause punctuation.
    clause_cut: Option<usize>,
    /// Last offset where it may be cut at a space.
    space_cut: Option<usize>,
}

/// Splits streamed text into sentences (see the module documentation for the rules).
///
/// Offsets are absolute byte positions in the stream; `buf` holds the text from `base` on.
// The flags track independent facts (line start, newline seen, word case, first emission).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
pub struct SentenceSplitter {
    cfg: SplitterConfig,
    buf: String,
    base: usize,
    /// Everything before this offset has been returned.
    emitted: usize,
    /// Characters in `buf[emitted..scanned]`.
    pending_chars: usize,
    /// End of the character being scanned.
    scanned: usize,
    out: Vec<String>,
    emitted_any: bool,
    run: Option<Run>,
    seg: Segment,
    /// The marker that would continue the current list.
    list: Option<Marker>,
    /// Inside a fenced code block: the fence character and length.
    fence: Option<(char, usize)>,
    /// Start of the word being read.
    word: Option<usize>,
    word_line_start: bool,
    /// The last completed word began with a capital letter.
    prev_cap: bool,
    /// Only whitespace since the last newline (or the start).
    at_line_start: bool,
    /// A newline since the last non-space character.
    newline_run: bool,
    last_text_end: usize,
    prev: char,
    prev2: char,
}

impl SentenceSplitter {
    /// A splitter with validated `cfg`.
    pub fn new(cfg: SplitterConfig) -> Result<Self, CoreError> {
        cfg.validate()?;
        Ok(Self::fresh(cfg))
    }

    fn fresh(cfg: SplitterConfig) -> Self {
        Self {
            cfg,
            buf: String::new(),
            base: 0,
            emitted: 0,
            pending_chars: 0,
            scanned: 0,
            out: Vec::new(),
            emitted_any: false,
            run: None,
            seg: Segment::default(),
            list: None,
            fence: None,
            word: None,
            word_line_start: true,
            prev_cap: false,
            at_line_start: true,
            newline_run: false,
            last_text_end: 0,
            prev: ' ',
            prev2: ' ',
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SplitterConfig {
        &self.cfg
    }

    /// Characters received and not yet returned.
    #[must_use]
    pub fn pending(&self) -> &str {
        &self.buf[self.emitted - self.base..]
    }

    /// Takes a token of any length; returns the sentences it completed, trimmed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        let offset = self.base + self.buf.len();
        self.buf.push_str(text);
        for (i, c) in text.char_indices() {
            self.step(c, offset + i);
        }
        if self.cfg.eager_first_end && !self.emitted_any {
            self.release_likely_end();
        }
        // Drop what was returned; what remains is the unfinished sentence.
        let done = self.emitted - self.base;
        if done > 0 {
            self.buf.drain(..done);
            self.base = self.emitted;
        }
        std::mem::take(&mut self.out)
    }

    /// Ends the stream: returns the rest (if it holds more than whitespace) and resets.
    pub fn flush(&mut self) -> Vec<String> {
        let mut out = std::mem::take(&mut self.out);
        let rest = trim(self.pending());
        if !rest.is_empty() {
            out.push(rest.to_owned());
        }
        self.reset();
        out
    }

    /// Forgets the stream (for a new reply, or after barge-in).
    pub fn reset(&mut self) {
        let cfg = self.cfg;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        *self = Self {
            buf,
            ..Self::fresh(cfg)
        };
    }

    fn step(&mut self, c: char, o: usize) {
        self.pending_chars += 1;
        self.scanned = o + c.len_utf8();
        if let Some(fence) = self.fence {
            self.fence_char(fence, c, o);
        } else if let Some(run) = self.run {
            self.run_char(run, c, o);
        } else {
            self.text_char(c, o);
        }
        if is_space(c) {
            if c == '\n' {
                self.newline_run = true;
                self.at_line_start = true;
            }
        } else {
            self.last_text_end = o + c.len_utf8();
            self.newline_run = false;
            self.at_line_start = false;
        }
        self.prev2 = self.prev;
        self.prev = c;
        if self.emitted == o && is_space(c) {
            self.emitted = o + c.len_utf8();
            self.pending_chars -= 1;
        }
        if self.pending_chars > self.cfg.max_chars && self.fence.is_none() {
            self.cut_long(o);
        }
    }

    /// A character inside a fenced code block: only a closing fence line matters.
    fn fence_char(&mut self, (fence, len): (char, usize), c: char, o: usize) {
        if !is_space(c) {
            if self.word.is_none() {
                self.word = Some(o);
                self.word_line_start = self.at_line_start;
            }
            return;
        }
        if let Some(start) = self.word.take() {
            let token = self.slice(start, o);
            if self.word_line_start
                && token.chars().all(|x| x == fence)
                && token.chars().count() >= len
            {
                self.fence = None;
                self.boundary(o);
            }
        }
    }

    /// A character outside a terminator run.
    fn text_char(&mut self, c: char, o: usize) {
        if is_space(c) {
            if let Some(start) = self.word.take() {
                self.complete_word(start, o);
            }
            if c == '\n' && self.seg.content && (self.seg.heading || self.newline_run) {
                self.boundary(self.last_text_end);
            }
            if is_clause_punct(self.prev) || (self.prev == '-' && is_space(self.prev2)) {
                self.clause_cut(o);
            }
            self.seg.space_cut = Some(o);
            return;
        }
        if is_terminator(c) {
            if self.word.is_none() {
                self.word_line_start = self.at_line_start;
            }
            self.run = Some(Run {
                start: o,
                end: o + c.len_utf8(),
                word: self.word,
                dots: u32::from(c == '.'),
                other: !matches!(c, '.' | '…'),
                ellipsis: c == '…',
                strong: is_strong_terminator(c),
                bracketed: matches!(self.prev, '[' | '('),
                ..Run::default()
            });
            return;
        }
        if self.word.is_none() {
            self.word = Some(o);
            self.word_line_start = self.at_line_start;
            if is_bullet(c) && self.seg.content {
                self.boundary(o);
            }
        }
        if c.is_alphanumeric() {
            self.seg.content = true;
        }
        if is_clause_mark(c) {
            self.clause_cut(o + c.len_utf8());
        }
    }

    /// A character after a terminator run.
    fn run_char(&mut self, mut run: Run, c: char, o: usize) {
        let end = o + c.len_utf8();
        if !run.space && (is_terminator(c) || is_closer(c)) {
            if is_terminator(c) && !run.closers {
                run.dots += u32::from(c == '.');
                run.other |= !matches!(c, '.' | '…');
                run.ellipsis |= c == '…';
                run.strong |= is_strong_terminator(c);
            } else {
                run.closers = true;
            }
            run.end = end;
            self.run = Some(run);
            return;
        }
        if is_space(c) {
            self.seg.space_cut = Some(o);
            if c == '\n' {
                if run.newline || self.seg.heading {
                    // A blank line or the end of a heading line: certain.
                    self.run = None;
                    self.word = None;
                    self.boundary(run.end);
                    return;
                }
                run.newline = true;
            }
            run.space = true;
            self.run = Some(run);
            return;
        }
        let dots_only = run.dots > 0 && !run.other && !run.ellipsis && !run.closers;
        if run.space && c == '.' && dots_only && !run.newline {
            // ". . ." — a spaced ellipsis continues the run.
            if run.dots == 1 && run.word.is_some() && !run.spaced {
                run.first_dot_spaced = true;
            }
            run.dots += 1;
            run.spaced = true;
            run.space = false;
            run.end = end;
            self.run = Some(run);
            return;
        }
        self.run = None;
        if !run.space {
            if run.strong || (is_cjk(c) && (run.other || run.dots == 1)) {
                self.word = None;
                self.boundary(run.end);
            } else {
                // Internal punctuation: "3.5", "e.g", "example.com", "mean...see".
                if run.word.is_none() {
                    self.word = Some(run.start);
                }
            }
            self.text_char(c, o);
            return;
        }
        self.decide(run, c);
        self.text_char(c, o);
    }

    /// Settles a run followed by a space and then `c`.
    fn decide(&mut self, run: Run, c: char) {
        self.word = None;
        if let Some(start) = run.word {
            if run.dots == 1 && !run.other && !run.spaced {
                let token = self.slice(start, run.end);
                if let Some(marker) = Marker::parse(token) {
                    if self.list_marker(marker, start, self.word_line_start) {
                        return;
                    }
                }
            }
        }
        let end = if self.seg.content && !run.bracketed {
            self.sentence_end(&run, c)
        } else {
            None
        };
        match end {
            Some(cut) => self.boundary(cut),
            None => {
                if let Some(start) = run.word {
                    let token = self.slice(start, run.start);
                    self.plain_word_done(starts_upper(token));
                }
            }
        }
    }

    /// Where the sentence ends, if the run followed by whitespace and `c` ends it.
    fn sentence_end(&self, run: &Run, c: char) -> Option<usize> {
        if run.strong {
            return Some(run.end);
        }
        if c.is_lowercase() || is_continuing_punct(c) {
            return None;
        }
        if run.other {
            return Some(run.end);
        }
        let upper = c.is_uppercase();
        if run.dots >= 3 || run.ellipsis {
            if run.first_dot_spaced && run.dots == 4 && upper {
                return Some(run.start + 1);
            }
            if run.dots >= 4 {
                return Some(run.end);
            }
            // "... I mean" goes on; "... Then" and "... «" start anew.
            let uncased = c.is_alphabetic() && !upper;
            return ((upper && c != 'I') || uncased || is_opener(c)).then_some(run.end);
        }
        let word = run
            .word
            .map_or("", |start| core_word(self.slice(start, run.start)));
        match classify(word, self.prev_cap, self.cfg.lang) {
            WordKind::NonTerminal | WordKind::Initial => None,
            WordKind::BeforeNumber if c.is_ascii_digit() => None,
            _ => Some(run.end),
        }
    }

    /// Eager first end: releases the sentence if the pending run would end it before any
    /// capital letter and nothing but a rare continuation could undo that: never after a
    /// number, list marker, URL, e-mail address, closing quote or bracket, an ellipsis, or an
    /// abbreviation that may go on ("Inc.", "etc.", "p." unless it is the only word: "No.").
    fn release_likely_end(&mut self) {
        let Some(run) = self.run else { return };
        let unsure = run.newline || run.bracketed || run.closers || run.dots > 1 || run.ellipsis;
        if unsure || !self.seg.content {
            return;
        }
        if run.dots == 1 && !run.other {
            let Some(start) = run.word else { return };
            let token = self.slice(start, run.start);
            let word = core_word(token);
            let plain = token.chars().next_back().is_some_and(char::is_alphabetic)
                && !token.contains(['.', '@', '/', ':'])
                && Marker::parse(self.slice(start, run.end)).is_none()
                && !often_final(word);
            let alone = self.seg.words == 0;
            let ends = match classify(word, self.prev_cap, self.cfg.lang) {
                WordKind::Plain | WordKind::Pronoun => plain,
                WordKind::BeforeNumber => plain && alone,
                WordKind::NonTerminal | WordKind::Initial => false,
            };
            if !ends {
                return;
            }
        }
        let long_enough =
            trim(self.slice(self.emitted, run.end)).chars().count() >= self.cfg.min_chars;
        if long_enough && self.sentence_end(&run, 'A') == Some(run.end) {
            self.emit(run.end);
        }
    }

    /// A word ended by whitespace (not by a terminator run).
    fn complete_word(&mut self, start: usize, end: usize) {
        let token = self.slice(start, end);
        let line_start = self.word_line_start;
        if let Some(fence) = line_start.then(|| fence_opening(token)).flatten() {
            if self.seg.content {
                self.boundary(start);
            }
            self.fence = Some(fence);
            self.seg.content = true;
            return;
        }
        if token
            .chars()
            .all(|c| is_bullet(c) || matches!(c, '-' | '*' | '+'))
        {
            // Bullets are not words; markdown ones start an item only at the start of a line.
            if line_start && self.seg.content && matches!(token, "-" | "*" | "+") {
                self.boundary(start);
            }
            return;
        }
        if token.len() <= 6
            && token.bytes().all(|b| b == b'#')
            && (line_start || self.seg.words == 0)
        {
            if self.seg.content {
                self.boundary(start);
            }
            self.seg.heading = true;
            return;
        }
        let upper = starts_upper(token);
        if let Some(marker) = Marker::parse(token) {
            if self.list_marker(marker, start, line_start) {
                return;
            }
        }
        self.plain_word_done(upper);
    }

    /// Handles a list marker token starting at `start`; false if it is an ordinary word.
    fn list_marker(&mut self, marker: Marker, start: usize, line_start: bool) -> bool {
        if self.seg.words > 0 {
            if !(line_start || self.list == Some(marker)) {
                return false;
            }
            self.boundary(start);
        }
        self.list = Some(marker.next());
        self.seg.words = 1;
        self.seg.content = true;
        self.prev_cap = false;
        true
    }

    fn plain_word_done(&mut self, upper: bool) {
        if self.seg.words == 0 {
            // A sentence that does not begin with a marker ends the list.
            self.list = None;
        }
        self.seg.words += 1;
        self.prev_cap = upper;
    }

    /// Records a clause boundary; in first-chunk mode it may release the first piece.
    fn clause_cut(&mut self, at: usize) {
        self.seg.clause_cut = Some(at);
        if let Some(first) = self.cfg.first_clause_chars {
            if !self.emitted_any
                && self.seg.content
                && trim(self.slice(self.emitted, at)).chars().count() >= first
            {
                self.cut_within(at);
            }
        }
    }

    /// A sentence ends at `cut`: release it (unless shorter than `min_chars`) and start anew.
    fn boundary(&mut self, cut: usize) {
        let mut seg = Segment::default();
        if cut > self.emitted {
            let short = self.cfg.min_chars > 0
                && trim(self.slice(self.emitted, cut)).chars().count() < self.cfg.min_chars;
            if short {
                // Joined to the next sentence; the join is the best place for a long cut.
                seg.clause_cut = Some(cut);
            } else {
                self.emit(cut);
            }
        }
        self.seg = seg;
        self.prev_cap = false;
    }

    /// The unfinished sentence is too long: cut it and carry on mid-sentence.
    fn cut_long(&mut self, o: usize) {
        let emitted = self.emitted;
        let length = |at: usize| self.slice(emitted, at).chars().count();
        // A candidate must release something and fit: a clause boundary found at the very
        // character that overflowed would make the piece one character too long.
        let fits = |at: usize| at > emitted && length(at) <= self.cfg.max_chars;
        let clause = self.seg.clause_cut.filter(|&at| fits(at));
        let long_enough = |at: usize| length(at) >= (self.cfg.max_chars / 2).max(1);
        let cut = clause
            .filter(|&at| long_enough(at))
            .or(self.seg.space_cut.filter(|&at| fits(at)))
            .or(clause)
            .unwrap_or(o);
        self.cut_within(cut);
    }

    /// Releases text up to `cut` without ending the sentence's state.
    fn cut_within(&mut self, cut: usize) {
        self.emit(cut);
        self.seg.clause_cut = self.seg.clause_cut.filter(|&at| at > cut);
        self.seg.space_cut = self.seg.space_cut.filter(|&at| at > cut);
        self.seg.words = self.seg.words.max(1);
    }

    fn emit(&mut self, cut: usize) {
        let piece = self.slice(self.emitted, cut);
        let count = piece.chars().count();
        let trimmed = trim(piece);
        if !trimmed.is_empty() {
            let owned = trimmed.to_owned();
            self.out.push(owned);
            self.emitted_any = true;
        }
        self.pending_chars -= count;
        self.emitted = cut;
        // Whitespace after the piece is dropped too, so it never counts toward max_chars.
        let gap = self.slice(cut, self.scanned.max(cut));
        let spaces = gap.len() - gap.trim_start_matches(is_space).len();
        self.pending_chars -= gap[..spaces].chars().count();
        self.emitted += spaces;
        // A hard cut may fall inside the current word; what was released stays released.
        self.word = self.word.map(|w| w.max(cut));
        if let Some(run) = &mut self.run {
            run.word = run.word.map(|w| w.max(cut));
        }
    }

    fn slice(&self, start: usize, end: usize) -> &str {
        // A hard cut may have released part of a word or run: clamp to what is still held.
        let end = end.max(self.base);
        let start = start.clamp(self.base, end);
        &self.buf[start - self.base..end - self.base]
    }
}

/// The fence character and length of a code block's opening line (three or more backticks
/// or tildes, then an optional info string such as `python`).
fn fence_opening(token: &str) -> Option<(char, usize)> {
    let c = token.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let len = token.chars().take_while(|&x| x == c).count();
    // A backtick fence's info string may not contain backticks.
    let info_ok = c == '~' || !token[len..].contains('`');
    (len >= 3 && info_ok).then_some((c, len))
}

fn starts_upper(token: &str) -> bool {
    core_word(token)
        .chars()
        .next()
        .is_some_and(char::is_uppercase)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn splitter() -> SentenceSplitter {
        SentenceSplitter::new(SplitterConfig::default()).unwrap()
    }

    fn split_whole(text: &str) -> Vec<String> {
        let mut s = splitter();
        let mut out = s.push(text);
        out.extend(s.flush());
        out
    }

    fn split_chars(text: &str) -> Vec<String> {
        let mut s = splitter();
        let mut out = Vec::new();
        for c in text.chars() {
            out.extend(s.push(c.encode_utf8(&mut [0; 4])));
        }
        out.extend(s.flush());
        out
    }

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(split_chars(text), expected, "char by char: {text:?}");
        assert_eq!(split_whole(text), expected, "whole: {text:?}");
    }

    #[test]
    fn splits_plain_sentences() {
        check(
            "Hello World. My name is Jonas.",
            &["Hello World.", "My name is Jonas."],
        );
        check("What? No! Yes.", &["What?", "No!", "Yes."]);
        check(
            "Hello!! Long time?! Yes",
            &["Hello!!", "Long time?!", "Yes"],
        );
    }

    #[test]
    fn keeps_abbreviations_numbers_and_addresses() {
        check(
            "Dr. Smith paid $4.50, i.e. 10% more, at 10:30 a.m. on v2.1.3 at example.com. Done.",
            &[
                "Dr. Smith paid $4.50, i.e. 10% more, at 10:30 a.m. on v2.1.3 at example.com.",
                "Done.",
            ],
        );
        check(
            "Ask J. R. R. Tolkien e.g. about it. Write to jane.doe@mail.org now.",
            &[
                "Ask J. R. R. Tolkien e.g. about it.",
                "Write to jane.doe@mail.org now.",
            ],
        );
        check(
            "We met on 12.05.2024. It rained.",
            &["We met on 12.05.2024.", "It rained."],
        );
    }

    #[test]
    fn handles_quotes_brackets_and_ellipses() {
        check(
            "He said \"Stop.\" Then he left (quietly.) And so on.",
            &["He said \"Stop.\"", "Then he left (quietly.)", "And so on."],
        );
        check(
            "Wait... what? Well... Maybe.",
            &["Wait... what?", "Well...", "Maybe."],
        );
        check("It was [...] fine. Yes.", &["It was [...] fine.", "Yes."]);
        check("**Done.** Next", &["**Done.**", "Next"]);
    }

    #[test]
    fn splits_lists_and_headings() {
        check(
            "## Steps\nDo this:\n1. Mix it\n2. Bake it\n- Serve\n\nEnjoy",
            &[
                "## Steps",
                "Do this:",
                "1. Mix it",
                "2. Bake it",
                "- Serve",
                "Enjoy",
            ],
        );
        check(
            "a. The first item b. The second item",
            &["a. The first item", "b. The second item"],
        );
        check("• one • two", &["• one", "• two"]);
    }

    #[test]
    fn keeps_code_blocks_whole() {
        check(
            "Run this:\n```python\nprint('a. B')\nx = 1. \n\n# no heading\n```\nIt prints. Done.",
            &[
                "Run this:",
                "```python\nprint('a. B')\nx = 1. \n\n# no heading\n```",
                "It prints.",
                "Done.",
            ],
        );
        // Never cut, even past max_chars; an unclosed block runs to the end.
        let cfg = SplitterConfig {
            max_chars: 10,
            ..SplitterConfig::default()
        };
        let mut s = SentenceSplitter::new(cfg).unwrap();
        let mut out = s.push("~~~\nlong code line here\n");
        out.extend(s.flush());
        assert_eq!(out, ["~~~\nlong code line here"]);
        check(
            "Inline ```x``` is no fence. Yes.",
            &["Inline ```x``` is no fence.", "Yes."],
        );
    }

    #[test]
    fn splits_other_scripts() {
        check(
            "你好。我是小明！你呢？",
            &["你好。", "我是小明！", "你呢？"],
        );
        check("यह एक है। वह दूसरा है।", &["यह एक है।", "वह दूसरा है।"]);
        check(
            "¿Cómo estás? ¡Muy bien! Gracias.",
            &["¿Cómo estás?", "¡Muy bien!", "Gracias."],
        );
        check("他说：“好。”然后走了。", &["他说：“好。”", "然后走了。"]);
    }

    #[test]
    fn releases_at_the_first_deciding_character() {
        let mut s = splitter();
        assert!(s.push("Hello there.").is_empty());
        assert!(s.push(" ").is_empty());
        assert_eq!(s.push("N"), ["Hello there."]);
        assert!(s.push("ext, e.g. ").is_empty());
        assert!(s.push("this").is_empty());
        assert_eq!(s.flush(), ["Next, e.g. this"]);
    }

    #[test]
    fn cuts_long_text_at_clauses() {
        let cfg = SplitterConfig {
            max_chars: 40,
            ..SplitterConfig::default()
        };
        let mut s = SentenceSplitter::new(cfg).unwrap();
        let text = "this goes on and on without a stop, and then it goes on more and more \
                    without end and it still goes on";
        let mut out = s.push(text);
        out.extend(s.flush());
        assert_eq!(out[0], "this goes on and on without a stop,");
        assert!(out.iter().all(|p| p.chars().count() <= 40), "{out:?}");
        assert_eq!(out.join(" "), text);
    }

    #[test]
    fn a_clause_boundary_at_the_overflowing_character_is_not_a_cut_past_max_chars() {
        let cfg = SplitterConfig {
            max_chars: 1,
            ..SplitterConfig::default()
        };
        let mut splitter = SentenceSplitter::new(cfg).unwrap();
        let mut out = splitter.push("0–");
        out.extend(splitter.flush());
        assert_eq!(out, ["0", "–"]);
    }

    #[test]
    fn whitespace_between_pieces_does_not_count_toward_max_chars() {
        let cfg = SplitterConfig {
            max_chars: 10,
            ..SplitterConfig::default()
        };
        let mut s = SentenceSplitter::new(cfg).unwrap();
        let mut out = s.push("Done now.\n\n   That's it.");
        out.extend(s.flush());
        assert_eq!(out, ["Done now.", "That's it."]);
    }

    #[test]
    fn first_clause_mode_releases_early_once() {
        let cfg = SplitterConfig {
            first_clause_chars: Some(10),
            ..SplitterConfig::default()
        };
        let mut s = SentenceSplitter::new(cfg).unwrap();
        assert!(s.push("Well, ").is_empty(), "shorter than 10 characters");
        assert_eq!(s.push("I think so, "), ["Well, I think so,"]);
        assert!(s.push("but then, who knows").is_empty());
        assert_eq!(s.flush(), ["but then, who knows"]);
    }

    #[test]
    fn eager_first_end_releases_a_likely_end_without_waiting() {
        let eager = || {
            SentenceSplitter::new(SplitterConfig {
                eager_first_end: true,
                ..SplitterConfig::default()
            })
            .unwrap()
        };
        let mut s = eager();
        assert_eq!(s.push("Sure"), Vec::<String>::new());
        assert_eq!(s.push("."), ["Sure."]);
        assert_eq!(s.push(" Here it is."), Vec::<String>::new()); // only the first piece
        assert_eq!(s.flush(), ["Here it is."]);
        for text in ["Of course!", "Really?", "Fine, thanks. ", "No."] {
            assert_eq!(eager().push(text), [text.trim()], "{text:?}");
        }
        // Ends that the next character may still undo wait for it, as without the option.
        for text in [
            "Call Dr.",
            "It is 3.",
            "Take e.g.",
            "Wait...",
            "Pick a.",
            "See J.",
            "Mail x@y.",
            "Go to http://x.",
            "Hi (see [a].",
        ] {
            assert_eq!(eager().push(text), Vec::<String>::new(), "{text:?}");
        }
        // An unusual continuation costs a split, never text.
        let mut s = eager();
        assert_eq!(s.push("Visit example."), ["Visit example."]);
        assert_eq!(s.push("com today. "), Vec::<String>::new());
        assert_eq!(s.flush(), ["com today."]);
    }

    #[test]
    fn min_chars_joins_short_sentences() {
        let cfg = SplitterConfig {
            min_chars: 10,
            ..SplitterConfig::default()
        };
        let mut s = SentenceSplitter::new(cfg).unwrap();
        let mut out = s.push("Hi. Okay. This one is long enough. Yes");
        out.extend(s.flush());
        assert_eq!(out, ["Hi. Okay. This one is long enough.", "Yes"]);
    }

    #[test]
    fn rejects_bad_limits() {
        let bad = |cfg: SplitterConfig| SentenceSplitter::new(cfg).unwrap_err().to_string();
        let d = SplitterConfig::default();
        assert!(bad(SplitterConfig { max_chars: 0, ..d }).contains("max_chars"));
        assert!(bad(SplitterConfig {
            min_chars: 400,
            ..d
        })
        .contains("min_chars (400) must not exceed max_chars (300)"));
        assert!(bad(SplitterConfig {
            first_clause_chars: Some(301),
            ..d
        })
        .contains("first_clause_chars"));
    }

    #[test]
    fn reset_forgets_everything() {
        let mut s = splitter();
        s.push("1. Half a sentence and Dr.");
        s.reset();
        assert_eq!(s.pending(), "");
        assert_eq!(s.push("Hi. There"), ["Hi."]);
    }

    fn pieces(text: &str, cuts: &[usize]) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
        bounds.push(0);
        bounds.push(chars.len());
        bounds.sort_unstable();
        bounds
            .windows(2)
            .map(|w| chars[w[0]..w[1]].iter().collect())
            .collect()
    }

    fn squash(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace()).collect()
    }

    proptest! {
        #[test]
        fn no_text_lost_and_chunking_does_not_matter(
            text in "([a-zA-Z0-9 .,;:!?'\"()\\[\\]\n#*•…。¿-]|Dr\\.|e\\.g\\.|1\\. |\\$4\\.50|é|\n```|~~~){0,120}",
            cuts in proptest::collection::vec(0usize..200, 0..30),
            max_chars in 5usize..80,
            min_chars in 0usize..5,
            first in proptest::option::of(0usize..5),
            eager in proptest::bool::ANY,
        ) {
            let cfg = SplitterConfig {
                min_chars,
                max_chars,
                first_clause_chars: first,
                eager_first_end: eager,
                lang: Lang::Any,
            };
            let run = |tokens: &[String]| {
                let mut s = SentenceSplitter::new(cfg).unwrap();
                let mut out = Vec::new();
                for t in tokens {
                    out.extend(s.push(t));
                }
                out.extend(s.flush());
                out
            };
            let whole = run(std::slice::from_ref(&text));
            let streamed = run(&pieces(&text, &cuts));
            // An eager first end depends on where tokens end; in one push it changes nothing.
            if eager {
                let cautious = SplitterConfig { eager_first_end: false, ..cfg };
                let mut s = SentenceSplitter::new(cautious).unwrap();
                let mut out = s.push(&text);
                out.extend(s.flush());
                prop_assert_eq!(&out, &whole);
            } else {
                prop_assert_eq!(&streamed, &whole);
            }
            prop_assert_eq!(squash(&streamed.concat()), squash(&text));
            for s in whole.iter().chain(&streamed) {
                prop_assert!(!s.is_empty() && s.trim() == s);
                let code = s.contains("```") || s.contains("~~~");
                prop_assert!(code || s.chars().count() <= max_chars, "{:?} longer than {}", s, max_chars);
            }
        }
    }
}
