//! Turns uploaded bytes into normalised text sections with page numbers: PDFs page by page
//! with lopdf, plain text and Markdown as one page cut into bounded sections. Every bad
//! input ends in a specific [`ExtractError`], never a panic.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::{Dictionary, Document, Encoding, LoadOptions, Object, ObjectId};

use crate::error::ExtractError;
use crate::model::MediaKind;
use crate::normalize::normalize;

/// Bounds on what one document may cost to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtractLimits {
    /// The most bytes any PDF stream (and any page's content) may decompress to.
    pub max_decoded_stream_bytes: usize,
    /// The most bytes all page contents and font maps of one PDF may decompress to together.
    pub max_decoded_document_bytes: usize,
    pub max_pages: usize,
    /// The most normalised text one document may yield (what chunking and embedding cost
    /// grows with).
    pub max_text_bytes: usize,
    /// Text documents are cut into sections of at most this many bytes before chunking,
    /// because the splitter slows down badly on one huge string.
    pub max_section_bytes: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_decoded_stream_bytes: 32 * 1024 * 1024,
            max_decoded_document_bytes: 256 * 1024 * 1024,
            max_pages: 10_000,
            max_text_bytes: 32 * 1024 * 1024,
            max_section_bytes: 64 * 1024,
        }
    }
}

/// A run of normalised text from one page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// 1-based page number; text documents are page 1 throughout.
    pub page: u32,
    pub text: String,
}

/// The text of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// Pages in the document (1 for text documents), including pages without text.
    pub page_count: u32,
    /// Non-empty sections in reading order.
    pub sections: Vec<Section>,
    /// The document's own title (PDF Info `/Title`), when it has one.
    pub title: Option<String>,
}

/// Extracts the text of a document of the given kind.
pub fn extract(
    kind: MediaKind,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<Extracted, ExtractError> {
    match kind {
        MediaKind::Pdf => extract_pdf(bytes, limits),
        MediaKind::Text | MediaKind::Markdown => extract_text(bytes, limits),
    }
}

/// Plain text or Markdown: strict UTF-8 (a leading BOM is allowed), normalised, cut into
/// sections at paragraph breaks.
pub fn extract_text(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| ExtractError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = normalize(text);
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    if text.len() > limits.max_text_bytes {
        return Err(ExtractError::TooMuchText {
            limit: limits.max_text_bytes,
        });
    }
    let sections = split_sections(&text, limits.max_section_bytes.max(1024))
        .into_iter()
        .map(|text| Section { page: 1, text })
        .collect();
    Ok(Extracted {
        page_count: 1,
        sections,
        title: None,
    })
}

/// Cuts `text` into pieces of at most `max` bytes, preferring paragraph breaks, then line
/// breaks, then spaces, and only then any character boundary.
fn split_sections(text: &str, max: usize) -> Vec<String> {
    let mut sections = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let window = &rest[..floor_char_boundary(rest, max)];
        let cut = ["\n\n", "\n", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).filter(|&i| i > max / 4))
            .unwrap_or(window.len());
        let (head, tail) = rest.split_at(cut);
        let head = head.trim();
        if !head.is_empty() {
            sections.push(head.to_owned());
        }
        rest = tail.trim_start();
    }
    let rest = rest.trim();
    if !rest.is_empty() {
        sections.push(rest.to_owned());
    }
    sections
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// A PDF, page by page. The parser runs under `catch_unwind` as a last line of defence:
/// lopdf is robust against most malformed files, but a crafted file must not take the
/// ingest worker down.
pub fn extract_pdf(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted, ExtractError> {
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(ExtractError::NotPdf);
    }
    // A complete PDF ends with %%EOF (possibly followed by a little padding); without it
    // the file was cut off, and lenient parsing would silently lose the tail.
    let tail = &bytes[bytes.len().saturating_sub(2048)..];
    if !tail.windows(5).any(|w| w == b"%%EOF") {
        return Err(ExtractError::Corrupt(
            "the file is truncated (it has no end-of-file marker)".to_owned(),
        ));
    }
    match catch_unwind(AssertUnwindSafe(|| extract_pdf_inner(bytes, limits))) {
        Ok(result) => result,
        Err(_) => Err(ExtractError::Corrupt(
            "the PDF parser could not make sense of it".to_owned(),
        )),
    }
}

fn extract_pdf_inner(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted, ExtractError> {
    let limit = limits.max_decoded_stream_bytes;
    let options = LoadOptions {
        max_decompressed_size: Some(limit),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(bytes, options).map_err(|e| load_error(e, limit))?;
    if doc.trailer.has(b"Encrypt") || doc.is_encrypted() || doc.was_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(ExtractError::NoPages);
    }
    if pages.len() > limits.max_pages {
        return Err(ExtractError::TooManyPages {
            pages: pages.len(),
            limit: limits.max_pages,
        });
    }
    let page_count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    let mut sections = Vec::new();
    let mut failed_pages = 0usize;
    let mut last_failure = String::new();
    // What the pages decoded to and yielded so far, against the per-document limits.
    let mut decoded = 0usize;
    let mut text_bytes = 0usize;
    let mut fonts = Fonts::new(&doc);
    for (&number, &page_id) in &pages {
        let budget = limits.max_decoded_document_bytes.saturating_sub(decoded);
        match page_text(&doc, &mut fonts, page_id, limit, budget) {
            Ok((raw, page_decoded)) => {
                decoded += page_decoded;
                let text = normalize(&raw);
                text_bytes += text.len();
                if text_bytes > limits.max_text_bytes {
                    return Err(ExtractError::TooMuchText {
                        limit: limits.max_text_bytes,
                    });
                }
                if !text.is_empty() {
                    sections.push(Section { page: number, text });
                }
            }
            Err(PageError::OverBudget) => {
                return Err(ExtractError::DocumentBomb {
                    limit: limits.max_decoded_document_bytes,
                });
            }
            Err(PageError::Pdf(lopdf::Error::Decompress(
                lopdf::DecompressError::MemoryLimitExceeded { .. },
            ))) => return Err(ExtractError::DecompressionBomb { limit }),
            Err(PageError::Pdf(e)) => {
                // One unreadable page should not sink a 300-page manual; an entirely
                // unreadable file is reported below as corrupt.
                tracing::debug!(page = number, error = %e, "skipping unreadable PDF page");
                failed_pages += 1;
                last_failure = e.to_string();
            }
        }
    }
    if sections.is_empty() {
        if failed_pages == pages.len() {
            return Err(ExtractError::Corrupt(last_failure));
        }
        if doc.xref_recovery.is_some() {
            // A damaged file that lenient parsing patched up and that yields nothing is
            // far more likely truncated than scanned.
            return Err(ExtractError::Corrupt(
                "its cross-reference table is damaged and no text could be recovered".to_owned(),
            ));
        }
        return Err(ExtractError::NoTextLayer);
    }
    Ok(Extracted {
        page_count,
        sections,
        title: pdf_title(&doc),
    })
}

fn load_error(e: lopdf::Error, limit: usize) -> ExtractError {
    match e {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            ExtractError::DecompressionBomb { limit }
        }
        lopdf::Error::Decryption(_)
        | lopdf::Error::InvalidPassword
        | lopdf::Error::UnsupportedSecurityHandler(_)
        | lopdf::Error::AlreadyEncrypted => ExtractError::Encrypted,
        other => ExtractError::Corrupt(other.to_string()),
    }
}

fn pdf_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        Object::Reference(id) => doc.get_dictionary(*id).ok()?,
        Object::Dictionary(d) => d,
        _ => return None,
    };
    let title = lopdf::decode_text_string(info.get(b"Title").ok()?).ok()?;
    let title = normalize(&title);
    (!title.is_empty()).then_some(title)
}

/// The text shown on one page, walking its content stream's text operators. Unlike
/// lopdf's own `extract_text`, this turns line moves into line breaks and wide `TJ`
/// gaps into spaces, which keeps words apart in real-world PDFs.
enum PageError {
    Pdf(lopdf::Error),
    /// The page's content would take the document past its decoded-bytes budget.
    OverBudget,
}

impl From<lopdf::Error> for PageError {
    fn from(e: lopdf::Error) -> Self {
        PageError::Pdf(e)
    }
}

/// Font encodings of a document, read once per font however many pages use it. A font's
/// ToUnicode map is the one stream its encoding decodes; what it decodes to counts against the
/// document's budget like page content.
struct Fonts<'a> {
    doc: &'a Document,
    /// By the font dictionary's address in `doc`: fonts shared by pages are one object.
    encodings: HashMap<*const Dictionary, Option<Encoding<'a>>>,
}

impl<'a> Fonts<'a> {
    fn new(doc: &'a Document) -> Self {
        Self {
            doc,
            encodings: HashMap::new(),
        }
    }

    /// Reads `font`'s encoding unless read already; returns the bytes decoded for it.
    fn load(
        &mut self,
        font: &'a Dictionary,
        limit: usize,
        budget: usize,
    ) -> Result<usize, PageError> {
        let key = std::ptr::from_ref(font);
        if self.encodings.contains_key(&key) {
            return Ok(0);
        }
        let mut decoded = 0;
        if let Ok(map) = font
            .get_deref(b"ToUnicode", self.doc)
            .and_then(Object::as_stream)
        {
            decoded = match map.get_plain_content_with_limit(limit.min(budget).max(1)) {
                Ok(content) => content.len(),
                Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                    ..
                })) if budget < limit => return Err(PageError::OverBudget),
                Err(
                    e @ lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                        ..
                    }),
                ) => return Err(e.into()),
                // Unreadable: lopdf falls back to the standard encoding.
                Err(_) => 0,
            };
            if decoded > budget {
                return Err(PageError::OverBudget);
            }
        }
        let encoding = font.get_font_encoding_with_limit(self.doc, limit).ok();
        self.encodings.insert(key, encoding);
        Ok(decoded)
    }

    fn get(&self, font: &Dictionary) -> Option<&Encoding<'a>> {
        self.encodings.get(&std::ptr::from_ref(font))?.as_ref()
    }
}

/// The page's text and how many bytes its content and fonts not read before decoded to;
/// refused once that exceeds `budget`.
fn page_text<'a>(
    doc: &'a Document,
    fonts: &mut Fonts<'a>,
    page_id: ObjectId,
    limit: usize,
    budget: usize,
) -> Result<(String, usize), PageError> {
    let page_fonts = doc.get_page_fonts(page_id)?;
    let mut decoded = 0;
    for font in page_fonts.values() {
        decoded += fonts.load(font, limit, budget - decoded)?;
    }
    let encodings: BTreeMap<&[u8], &Encoding<'_>> = page_fonts
        .iter()
        .filter_map(|(name, font)| Some((name.as_slice(), fonts.get(font)?)))
        .collect();
    let budget = budget - decoded;
    let data = match doc.get_page_content_with_limit(page_id, limit.min(budget).max(1)) {
        Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }))
            if budget < limit =>
        {
            return Err(PageError::OverBudget);
        }
        other => other?,
    };
    if data.len() > budget {
        return Err(PageError::OverBudget);
    }
    let content = lopdf::content::Content::decode(&data)?;
    let mut out = String::new();
    let mut encoding: Option<&Encoding<'_>> = None;
    for op in &content.operations {
        let operand = |i: usize| op.operands.get(i);
        match op.operator.as_str() {
            "Tf" => {
                encoding = operand(0)
                    .and_then(|o| o.as_name().ok())
                    .and_then(|name| encodings.get(name))
                    .copied();
            }
            "Tj" => show(&mut out, encoding, operand(0)),
            "'" => {
                line_break(&mut out);
                show(&mut out, encoding, operand(0));
            }
            "\"" => {
                line_break(&mut out);
                show(&mut out, encoding, operand(2));
            }
            "TJ" => {
                for item in operand(0)
                    .and_then(|o| o.as_array().ok())
                    .into_iter()
                    .flatten()
                {
                    match item {
                        Object::String(..) => show(&mut out, encoding, Some(item)),
                        // Kerning is in thousandths of text space; a gap this wide is a
                        // word space set by adjustment rather than a space glyph.
                        Object::Integer(_) | Object::Real(_)
                            if item.as_float().is_ok_and(|gap| gap < -200.0) =>
                        {
                            space(&mut out);
                        }
                        _ => {}
                    }
                }
            }
            "Td" | "TD" => {
                let dy = operand(1).and_then(|o| o.as_float().ok()).unwrap_or(0.0);
                if dy.abs() > f32::EPSILON {
                    line_break(&mut out);
                } else {
                    space(&mut out);
                }
            }
            "T*" | "Tm" | "ET" => line_break(&mut out),
            _ => {}
        }
    }
    Ok((out, decoded + data.len()))
}

fn show(out: &mut String, encoding: Option<&Encoding<'_>>, operand: Option<&Object>) {
    let Some(Object::String(bytes, _)) = operand else {
        return;
    };
    match encoding.map(|e| Document::decode_text(e, bytes)) {
        Some(Ok(text)) => out.push_str(&text),
        // No usable font encoding: printable ASCII is the best guess that cannot produce
        // mojibake; anything else is left out.
        _ => out.extend(
            bytes
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .map(|&b| char::from(b)),
        ),
    }
}

fn line_break(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn space(out: &mut String) {
    if !out.is_empty() && !out.ends_with([' ', '\n']) {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_respect_the_bound_and_prefer_paragraphs() {
        let para = "word ".repeat(100);
        let text = format!("{para}\n\n{para}\n\n{para}");
        let sections = split_sections(&text, 1024);
        assert_eq!(sections.len(), 2);
        assert!(sections.iter().all(|s| s.len() <= 1024));
        // Two paragraphs fit the first section; the cut falls at the second break.
        assert_eq!(sections[0], format!("{para}\n\n{}", para.trim()));
    }

    #[test]
    fn sections_cut_unbroken_text_on_char_boundaries() {
        let text = "é".repeat(3000);
        let sections = split_sections(&text, 1001);
        assert!(sections.iter().all(|s| s.len() <= 1001));
        assert_eq!(sections.concat(), text);
    }

    #[test]
    fn text_must_be_utf8() {
        let limits = ExtractLimits::default();
        assert_eq!(
            extract_text(b"ok \xff\xfe bad", &limits),
            Err(ExtractError::InvalidUtf8 { offset: 3 })
        );
        assert_eq!(extract_text(b"  \n ", &limits), Err(ExtractError::Empty));
        let doc = extract_text("\u{FEFF}# Title\n\nbody".as_bytes(), &limits)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(doc.sections[0].text, "# Title\n\nbody");
    }

    #[test]
    fn non_pdf_bytes_are_rejected_before_parsing() {
        let limits = ExtractLimits::default();
        assert_eq!(
            extract_pdf(b"PK\x03\x04 this is a zip", &limits),
            Err(ExtractError::NotPdf)
        );
    }
}
