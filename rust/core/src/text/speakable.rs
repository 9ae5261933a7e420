//! `speakable`: the text a TTS should read.
//!
//! Removes what a voice must not say: markdown emphasis (`**`, `*`, `_`, `~~`), heading
//! marks, list bullets, thematic breaks, link and image syntax (the link text stays), code
//! fences with their contents, inline-code backticks (the code stays: "run `ls`" → "run ls"),
//! and emoji. Whitespace runs become one space and the ends are trimmed. Nothing else changes:
//! numbers, punctuation, `*` between spaces ("2 * 3") and `_` inside words (`snake_case`) stay.

use super::chars::{is_space, trim};

/// Returns `text` without markdown, code blocks and emoji, whitespace collapsed.
#[must_use]
pub fn speakable(text: &str) -> String {
    let lines = strip_lines(text);
    let mut marked = inline(&lines);
    emphasis(&mut marked);
    let mut out = String::with_capacity(text.len());
    for word in marked
        .iter()
        .filter(|m| !m.drop)
        .map(|m| m.c)
        .collect::<String>()
        .split(is_space)
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Line-level markdown: fences (and what they hold), headings, bullets, thematic breaks.
fn strip_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let body = trim(line);
        if let Some((c, n)) = fence_marker(body) {
            match fence {
                None => fence = Some((c, n)),
                Some((open, len)) if open == c && n >= len => fence = None,
                Some(_) => {}
            }
        } else if fence.is_none() && !is_thematic_break(body) {
            let body = strip_heading(body).unwrap_or(body);
            out.push_str(strip_bullet(body).unwrap_or(body));
        }
        out.push('\n');
    }
    out
}

/// Three or more backticks or tildes opening a line: the fence character and length.
fn fence_marker(body: &str) -> Option<(char, usize)> {
    let c = body.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let n = body.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// "---", "* * *", "___": a line of three or more of one of `-*_` and spaces.
fn is_thematic_break(body: &str) -> bool {
    let mut marks = body.chars().filter(|&c| !is_space(c));
    let Some(first) = marks.next().filter(|c| matches!(c, '-' | '*' | '_')) else {
        return false;
    };
    let rest: Vec<char> = marks.collect();
    rest.len() >= 2 && rest.iter().all(|&c| c == first)
}

/// "## Title ##" → "Title".
fn strip_heading(body: &str) -> Option<&str> {
    let hashes = body.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &body[hashes..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r'])) {
        return None;
    }
    let rest = trim(rest);
    // A closing sequence of hashes after a space is decoration too.
    let trimmed = rest.trim_end_matches('#');
    Some(if trimmed.ends_with(' ') || trimmed.is_empty() {
        trimmed.trim_end()
    } else {
        rest
    })
}

/// "- item", "* item", "+ item", "• item" → "item".
fn strip_bullet(body: &str) -> Option<&str> {
    let mut chars = body.chars();
    let c = chars.next()?;
    if !(matches!(c, '-' | '*' | '+') || super::chars::is_bullet(c)) {
        return None;
    }
    let rest = chars.as_str();
    rest.starts_with([' ', '\t']).then(|| rest.trim_start())
}

/// A character of the output and whether it is removed; `code` chars are never markup.
#[derive(Debug, Clone, Copy)]
struct Mark {
    c: char,
    drop: bool,
    code: bool,
}

/// Inline code spans, links, images and emoji.
fn inline(text: &str) -> Vec<Mark> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let keep = |c: char, code: bool| Mark {
        c,
        drop: false,
        code,
    };
    let mut i = 0;
    let mut after_emoji = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            let n = run_len(&chars, i, '`');
            if let Some(close) = find_backtick_close(&chars, i + n, n) {
                out.extend(chars[i + n..close].iter().map(|&x| keep(x, true)));
                i = close + n;
            } else {
                out.extend(chars[i..i + n].iter().map(|&x| keep(x, false)));
                i += n;
            }
            after_emoji = false;
            continue;
        }
        let image = c == '!' && chars.get(i + 1) == Some(&'[');
        if c == '[' || image {
            let open = i + usize::from(image);
            if let Some((text_end, link_end)) = link_at(&chars, open) {
                out.extend(chars[open + 1..text_end].iter().map(|&x| keep(x, false)));
                i = link_end;
                after_emoji = false;
                continue;
            }
        }
        let emoji = is_emoji(c) || (c == '\u{200D}' && after_emoji);
        if !emoji {
            out.push(keep(c, false));
        }
        after_emoji = emoji;
        i += 1;
    }
    out
}

fn run_len(chars: &[char], at: usize, c: char) -> usize {
    chars[at..].iter().take_while(|&&x| x == c).count()
}

/// The start of the closing run of exactly `n` backticks at or after `from`.
fn find_backtick_close(chars: &[char], from: usize, n: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '`' {
            let len = run_len(chars, i, '`');
            if len == n {
                return Some(i);
            }
            i += len;
        } else {
            i += 1;
        }
    }
    None
}

/// `[text](url)` at `open`: the index of `]` and the index after `)`.
fn link_at(chars: &[char], open: usize) -> Option<(usize, usize)> {
    let text_end = open
        + 1
        + chars[open + 1..]
            .iter()
            .position(|&c| c == ']' || c == '\n')?;
    if chars[text_end] != ']' || chars.get(text_end + 1) != Some(&'(') {
        return None;
    }
    let mut depth = 0usize;
    for (k, &c) in chars.iter().enumerate().skip(text_end + 2) {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some((text_end, k + 1)),
            ')' => depth -= 1,
            c if is_space(c) && c != ' ' => return None,
            _ => {}
        }
    }
    None
}

/// Pictographic emoji and the marks that modify them (variation selector 16, keycap, tags).
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF
        | 0x2600..=0x27BF
        | 0x231A | 0x231B | 0x2328 | 0x23CF | 0x23E9..=0x23F3 | 0x23F8..=0x23FA
        | 0x25AA | 0x25AB | 0x25B6 | 0x25C0 | 0x25FB..=0x25FE
        | 0x2934 | 0x2935 | 0x2B05..=0x2B07 | 0x2B1B | 0x2B1C | 0x2B50 | 0x2B55
        | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F)
}

/// Removes matched emphasis delimiters (`*`, `_`, `~~`), following `CommonMark`'s flanking
/// rules in a simplified form: a run opens if it is followed by a non-space and closes if it
/// follows one; `_` inside a word does neither. Unmatched runs stay as written.
fn emphasis(marks: &mut [Mark]) {
    struct Delim {
        at: usize,
        len: usize,
        c: char,
    }
    let mut stack: Vec<Delim> = Vec::new();
    let mut i = 0;
    while i < marks.len() {
        let c = marks[i].c;
        if marks[i].code || marks[i].drop || !matches!(c, '*' | '_' | '~') {
            i += 1;
            continue;
        }
        let len = marks[i..]
            .iter()
            .take_while(|m| m.c == c && !m.code && !m.drop)
            .count();
        if c == '~' && len != 2 {
            i += len;
            continue;
        }
        let before = i.checked_sub(1).map(|k| marks[k]);
        let after = marks.get(i + len).copied();
        let space = |m: Option<Mark>| m.is_none_or(|m| !m.code && is_space(m.c));
        let punct = |m: Option<Mark>| m.is_some_and(|m| !m.code && is_punct(m.c));
        let left = !space(after) && (!punct(after) || space(before) || punct(before));
        let right = !space(before) && (!punct(before) || space(after) || punct(after));
        let (opens, closes) = if c == '_' {
            (
                left && (!right || punct(before)),
                right && (!left || punct(after)),
            )
        } else {
            (left, right)
        };
        let mut matched = false;
        if closes {
            if let Some(k) = stack.iter().rposition(|d| d.c == c) {
                let open = &stack[k];
                let (from, n) = (open.at, open.len.min(len));
                for m in &mut marks[from + open.len - n..from + open.len] {
                    m.drop = true;
                }
                for m in &mut marks[i..i + n] {
                    m.drop = true;
                }
                stack.truncate(k);
                matched = true;
            }
        }
        if opens && !matched {
            stack.push(Delim { at: i, len, c });
        }
        i += len;
    }
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_alphanumeric() && !is_space(c))
}

#[cfg(test)]
mod tests {
    use super::speakable;

    #[test]
    fn removes_markdown() {
        assert_eq!(speakable("## The **plan**\n"), "The plan");
        assert_eq!(
            speakable("- first *item*\n- second __one__\n* third"),
            "first item second one third"
        );
        assert_eq!(
            speakable("See [the docs](https://x.org/a_(b)) and ![a cat](c.png)."),
            "See the docs and a cat."
        );
        assert_eq!(
            speakable("Run `pip install x` now."),
            "Run pip install x now."
        );
        assert_eq!(
            speakable("Code:\n```python\nprint('hi')\n```\nDone ~~not~~."),
            "Code: Done not."
        );
        assert_eq!(speakable("Intro\n\n---\n\nNext"), "Intro Next");
    }

    #[test]
    fn removes_emoji() {
        assert_eq!(
            speakable("Great job 🎉👍🏽! ❤️ Love it"),
            "Great job ! Love it"
        );
        assert_eq!(speakable("Family: 👨‍👩‍👧 ok"), "Family: ok");
    }

    #[test]
    fn changes_nothing_else() {
        for text in [
            "2 * 3 * 4 = 24",
            "my_var_name is 5*3.",
            "Dr. Smith paid $4.50 (10%) at 10:30 a.m.!",
            "Copyright © 2024 Acme™, «quoted» — done…",
            "1. First, then 2. second",
            "नमस्ते दुनिया। 你好，世界。",
            "a # not a heading, and - not a bullet",
            "unclosed `tick and [bracket and **star",
        ] {
            assert_eq!(speakable(text), text);
        }
        assert_eq!(speakable("  lots   of\n\n space\t"), "lots of space");
        assert_eq!(speakable(""), "");
    }
}
