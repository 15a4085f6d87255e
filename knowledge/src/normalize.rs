//! Text normalisation shared by every input format: typographic ligatures, soft and
//! hyphenated line breaks, odd whitespace and control characters.

/// Normalises extracted text: ligatures become letters, a word hyphenated across a line
/// break is joined, runs of blanks become one space, lines are trimmed, and at most one
/// empty line separates paragraphs (the paragraph and line breaks are kept because the
/// chunker splits at them first).
pub fn normalize(raw: &str) -> String {
    let mapped = map_chars(raw);
    let mut out = String::with_capacity(mapped.len());
    let mut blank_lines = 0usize;
    // Set when the previous line ended in "letter-": the hyphen was held back and is
    // dropped if the next line continues the word in lower case.
    let mut held_hyphen = false;
    for line in mapped.split('\n') {
        let start = out.len();
        let line = line.trim();
        if line.is_empty() {
            if held_hyphen {
                out.push('-');
                held_hyphen = false;
            }
            if !out.is_empty() {
                blank_lines += 1;
            }
            continue;
        }
        let continues_word =
            held_hyphen && blank_lines == 0 && line.chars().next().is_some_and(char::is_lowercase);
        if held_hyphen && !continues_word {
            out.push('-');
        }
        if !continues_word && start > 0 {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        push_collapsed(&mut out, line);
        held_hyphen = ends_in_hyphenated_word(&out);
        if held_hyphen {
            out.pop();
        }
    }
    if held_hyphen {
        out.push('-');
    }
    out
}

/// Maps ligatures to letters, line-break variants to `\n`, unusual spaces to ' ', and
/// drops invisible characters (soft hyphen, zero-width, BOM) and other controls.
fn map_chars(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{FB00}' => s.push_str("ff"),
            '\u{FB01}' => s.push_str("fi"),
            '\u{FB02}' => s.push_str("fl"),
            '\u{FB03}' => s.push_str("ffi"),
            '\u{FB04}' => s.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => s.push_str("st"),
            '\u{0132}' => s.push_str("IJ"),
            '\u{0133}' => s.push_str("ij"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                s.push('\n');
            }
            '\n' | '\u{000B}' | '\u{000C}' | '\u{2028}' | '\u{2029}' | '\u{0085}' => s.push('\n'),
            '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => {}
            '\t'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}' => s.push(' '),
            // PDFs sometimes use NUL or other controls as glyph separators; a space keeps
            // the words apart without inventing text.
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

fn push_collapsed(out: &mut String, line: &str) {
    let mut in_space = false;
    for c in line.chars() {
        if c == ' ' {
            in_space = true;
        } else {
            if in_space {
                out.push(' ');
                in_space = false;
            }
            out.push(c);
        }
    }
}

/// True when `text` ends with a letter followed by '-' that is itself preceded by a
/// letter, i.e. a word broken at the line end ("exam-"), not a dash (" -") or a bare "-".
fn ends_in_hyphenated_word(text: &str) -> bool {
    let mut rev = text.chars().rev();
    matches!(
        (rev.next(), rev.next(), rev.next()),
        (Some('-'), Some(a), Some(b)) if a.is_alphabetic() && a.is_lowercase() && b.is_alphabetic()
    )
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn ligatures_become_letters() {
        assert_eq!(
            normalize("e\u{FB03}cient \u{FB01}nance \u{FB02}ow"),
            "efficient finance flow"
        );
    }

    #[test]
    fn hyphenated_line_breaks_are_joined() {
        assert_eq!(normalize("an exam-\nple of it"), "an example of it");
        // A capitalised continuation is a real compound, and a dash is not a hyphen.
        assert_eq!(normalize("Jean-\nPaul"), "Jean-\nPaul");
        assert_eq!(normalize("this -\nthat"), "this -\nthat");
        assert_eq!(normalize("end-\n\nnew paragraph"), "end-\n\nnew paragraph");
        assert_eq!(normalize("trailing-"), "trailing-");
    }

    #[test]
    fn whitespace_is_collapsed_and_paragraphs_kept() {
        let raw =
            "  Hello\t\u{00A0} world  \r\n\r\n\r\n\n  second\u{00AD}line \u{200B}here\u{0000}x ";
        assert_eq!(normalize(raw), "Hello world\n\nsecondline here x");
    }

    #[test]
    fn empty_input_stays_empty() {
        assert_eq!(normalize(" \n\t\n "), "");
    }
}
