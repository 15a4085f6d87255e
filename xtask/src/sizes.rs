//! Size limits (ARCHITECTURE.md, "Size limits"): no source file over [`MAX_FILE_LINES`]
//! lines and no non-test function over [`MAX_FN_LINES`], where a function's lines inside a
//! Leptos `view!` macro (markup) do not count. Test code — `tests/` directories, and
//! `#[cfg(test)]` modules — is exempt from the function limit; the file limit holds for
//! every `.rs` file except those in [`FILE_EXCEPTIONS`].
//!
//! The scan is lexical, not a parse: it skips comments, strings (raw ones included) and
//! character literals, and matches braces. That is all the limits need.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub const MAX_FILE_LINES: usize = 800;
pub const MAX_FN_LINES: usize = 100;

/// Files allowed past [`MAX_FILE_LINES`], each with its reason (also in ARCHITECTURE.md).
pub const FILE_EXCEPTIONS: &[(&str, &str)] = &[];

/// Where the scan never looks.
const SKIPPED_DIRS: &[&str] = &["target", ".git", ".brain", "node_modules", ".ci"];

#[derive(Debug, PartialEq, Eq)]
pub enum Oversize {
    File {
        path: String,
        lines: usize,
    },
    Function {
        path: String,
        name: String,
        line: usize,
        lines: usize,
    },
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Oversize::File { path, lines } => {
                write!(f, "{path}: {lines} lines (limit {MAX_FILE_LINES})")
            }
            Oversize::Function {
                path,
                name,
                line,
                lines,
            } => write!(
                f,
                "{path}:{line}: fn {name} has {lines} lines (limit {MAX_FN_LINES})"
            ),
        }
    }
}

/// Checks every `.rs` file of the workspace at `root`.
pub fn check_workspace(root: &Path) -> anyhow::Result<Vec<Oversize>> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let path = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let test_file = path.split('/').any(|part| part == "tests");
        found.extend(check_file(&path, &text, test_file));
    }
    Ok(found)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_ref()) {
                collect(&path, files)?;
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The limits `text` (the file at `path`) breaks. `test_file`: only the file limit applies.
pub fn check_file(path: &str, text: &str, test_file: bool) -> Vec<Oversize> {
    let mut found = Vec::new();
    let lines = text.lines().count();
    let excepted = FILE_EXCEPTIONS.iter().any(|(p, _)| *p == path);
    if lines > MAX_FILE_LINES && !excepted {
        found.push(Oversize::File {
            path: path.to_owned(),
            lines,
        });
    }
    if !test_file {
        for f in functions(text) {
            if f.lines > MAX_FN_LINES {
                found.push(Oversize::Function {
                    path: path.to_owned(),
                    name: f.name,
                    line: f.line,
                    lines: f.lines,
                });
            }
        }
    }
    found
}

/// A non-test function: its name, first line, and lines outside `view!` markup.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub line: usize,
    pub lines: usize,
}

/// A code token that matters to the scan, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Open(char),
    Close(char),
    Punct(char),
}

/// The tokens of `text`, without comments, strings and character literals.
fn tokens(text: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Counts the newlines in chars[from..to].
    let newlines = |from: usize, to: usize| chars[from..to].iter().filter(|c| **c == '\n').count();
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let start = i;
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                line += newlines(start, i.min(chars.len()));
            }
            '"' => {
                let start = i;
                i = skip_string(&chars, i + 1);
                line += newlines(start, i);
            }
            'r' | 'b' if is_raw_string(&chars, i) => {
                let start = i;
                i = skip_raw_string(&chars, i);
                line += newlines(start, i);
            }
            '\'' => i = skip_char_or_lifetime(&chars, i),
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                // `b"..."` and `c"..."` byte/C strings: the prefix is part of the literal.
                if (word == "b" || word == "c") && chars.get(i) == Some(&'"') {
                    continue;
                }
                out.push((line, Token::Ident(word)));
            }
            '{' | '(' | '[' => {
                out.push((line, Token::Open(c)));
                i += 1;
            }
            '}' | ')' | ']' => {
                out.push((line, Token::Close(c)));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.push((line, Token::Punct(c)));
                i += 1;
            }
        }
    }
    out
}

/// Past the closing quote of a string whose body starts at `i`.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"`, `r#"`, `br"`, `br#"` at `i` (and not an identifier such as `rust`).
fn is_raw_string(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return false;
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

fn skip_raw_string(chars: &[char], mut i: usize) -> usize {
    while chars[i] != '#' && chars[i] != '"' {
        i += 1;
    }
    let mut hashes = 0;
    while chars[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// Past a character literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`).
fn skip_char_or_lifetime(chars: &[char], i: usize) -> usize {
    match chars.get(i + 1) {
        Some('\\') => {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            j + 1
        }
        Some(_) if chars.get(i + 2) == Some(&'\'') => i + 3,
        // A lifetime or label: skip the quote, the name is an identifier.
        _ => i + 1,
    }
}

/// The index of the token closing the group opened at `open`.
fn matching(tokens: &[(usize, Token)], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, (_, t)) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Open(_) => depth += 1,
            Token::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// The non-test functions of `text` and their lengths without `view!` markup.
pub fn functions(text: &str) -> Vec<Function> {
    let tokens = tokens(text);
    let mut found = Vec::new();
    let mut skip_until = 0;
    for k in 0..tokens.len() {
        if k < skip_until {
            continue;
        }
        // `#[cfg(test)] mod … { … }`: tests are exempt.
        if is_cfg_test(&tokens, k) {
            if let Some(open) = tokens[k..]
                .iter()
                .position(|(_, t)| matches!(t, Token::Open('{')) || *t == Token::Punct(';'))
                .map(|p| p + k)
                .filter(|&p| tokens[p].1 == Token::Open('{'))
            {
                skip_until = matching(&tokens, open) + 1;
            }
            continue;
        }
        let (Token::Ident(kw), Some((line, Token::Ident(name)))) =
            (&tokens[k].1, tokens.get(k + 1))
        else {
            continue;
        };
        if kw != "fn" {
            continue;
        }
        // The body is the first `{` at this level before a `;` (a declaration has none).
        let mut depth = 0i32;
        let mut body = None;
        for (j, (_, t)) in tokens.iter().enumerate().skip(k + 2) {
            match t {
                Token::Open('{') if depth == 0 => {
                    body = Some(j);
                    break;
                }
                Token::Open(_) => depth += 1,
                Token::Close(_) => depth -= 1,
                Token::Punct(';') if depth == 0 => break,
                _ => {}
            }
        }
        let Some(open) = body else { continue };
        let close = matching(&tokens, open);
        let (first, last) = (*line, tokens[close].0);
        let mut counted: BTreeSet<usize> = (first..=last).collect();
        for m in open..close {
            let is_view = tokens[m].1 == Token::Ident("view".into())
                && tokens.get(m + 1).map(|t| &t.1) == Some(&Token::Punct('!'))
                && matches!(tokens.get(m + 2).map(|t| &t.1), Some(Token::Open(_)));
            if is_view {
                let end = matching(&tokens, m + 2);
                // The markup's own lines: between the macro's opening and closing lines.
                for l in tokens[m + 2].0 + 1..tokens[end].0 {
                    counted.remove(&l);
                }
            }
        }
        found.push(Function {
            name: name.clone(),
            line: first,
            lines: counted.len(),
        });
    }
    found
}

/// `#` `[` `cfg` `(` `test` `)` `]` at `k`.
fn is_cfg_test(tokens: &[(usize, Token)], k: usize) -> bool {
    let want = [
        Token::Punct('#'),
        Token::Open('['),
        Token::Ident("cfg".into()),
        Token::Open('('),
        Token::Ident("test".into()),
        Token::Close(')'),
        Token::Close(']'),
    ];
    tokens.len() >= k + want.len()
        && tokens[k..k + want.len()]
            .iter()
            .map(|t| &t.1)
            .eq(want.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("    let x{i} = {i};\n"))
            .collect()
    }

    #[test]
    fn functions_are_measured_from_signature_to_closing_brace() {
        let text = format!(
            "fn short() {{\n{}}}\n\npub async fn long(a: u8) -> u8 {{\n{}}}\n",
            body(3),
            body(120)
        );
        let found = functions(&text);
        assert_eq!(
            found,
            [
                Function {
                    name: "short".into(),
                    line: 1,
                    lines: 5
                },
                Function {
                    name: "long".into(),
                    line: 7,
                    lines: 122
                },
            ]
        );
        let over = check_file("x.rs", &text, false);
        assert_eq!(over.len(), 1, "{over:?}");
        assert!(over[0].to_string().contains("fn long has 122 lines"));
    }

    #[test]
    fn strings_comments_and_chars_hide_no_braces() {
        let text = "fn tricky() {\n    let s = \"}\";\n    let r = r#\"{ \"}\" \"#;\n    // }\n    /* } /* } */ */\n    let c = '}';\n    let l: &'static str = \"\";\n}\nfn after() {}\n";
        let found = functions(text);
        assert_eq!(
            found[0],
            Function {
                name: "tricky".into(),
                line: 1,
                lines: 8
            }
        );
        assert_eq!(found[1].name, "after");
    }

    #[test]
    fn tests_and_markup_do_not_count() {
        let view: String = (0..150).map(|_| "        <p>\"text\"</p>\n").collect();
        let text = format!(
            "fn page() -> impl IntoView {{\n    view! {{\n{view}    }}\n}}\n\n#[cfg(test)]\nmod tests {{\n    fn helper() {{\n{}    }}\n}}\n",
            body(150)
        );
        let found = functions(&text);
        assert_eq!(
            found,
            [Function {
                name: "page".into(),
                line: 1,
                lines: 4
            }]
        );
        // 150 lines of markup and a 150-line test helper: nothing over the limits.
        assert_eq!(check_file("p.rs", &text, false), []);
    }

    #[test]
    fn files_over_the_limit_are_reported_unless_excepted() {
        let text = "// x\n".repeat(MAX_FILE_LINES + 1);
        assert_eq!(
            check_file("big.rs", &text, true),
            [Oversize::File {
                path: "big.rs".into(),
                lines: MAX_FILE_LINES + 1
            }]
        );
    }

    #[test]
    fn this_workspace_keeps_the_size_limits() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let found = check_workspace(root).unwrap();
        let report: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            report.is_empty(),
            "over the size limits:\n{}",
            report.join("\n")
        );
    }
}
