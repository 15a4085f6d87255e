//! The extractor on generated PDFs: page numbers, every bad-input case, and a bounded
//! property test over mutated PDFs that must never panic.

use brain_knowledge::extract::{ExtractLimits, extract, extract_pdf};
use brain_knowledge::{ExtractError, MediaKind};
use proptest::prelude::*;

use crate::pdf;

fn limits() -> ExtractLimits {
    ExtractLimits {
        max_decoded_stream_bytes: 1024 * 1024,
        ..ExtractLimits::default()
    }
}

#[test]
fn text_stays_on_its_page() {
    let bytes = pdf::with_pages(&[
        "The first page talks about e\u{FB03}cient onboarding.",
        "",
        "Page three explains the refund policy in de-\ntail for customers.",
    ]);
    let doc = extract_pdf(&bytes, &limits()).unwrap();
    assert_eq!(doc.page_count, 3);
    let pages: Vec<u32> = doc.sections.iter().map(|s| s.page).collect();
    assert_eq!(pages, vec![1, 3], "the empty page has no section");
    // WinAnsi has no ligature glyph, so lopdf writes '?' for it; the hyphenated break
    // is joined by normalisation.
    assert!(
        doc.sections[0]
            .text
            .starts_with("The first page talks about")
    );
    assert_eq!(
        doc.sections[1].text,
        "Page three explains the refund policy in detail for customers."
    );
}

#[test]
fn every_bad_pdf_has_its_own_error() {
    let limits = limits();
    let good = pdf::with_pages(&["Some text"]);
    assert_eq!(
        extract_pdf(b"Hello, I am a text file", &limits),
        Err(ExtractError::NotPdf)
    );
    assert_eq!(
        extract(MediaKind::Pdf, b"\x89PNG\r\n\x1a\n....", &limits),
        Err(ExtractError::NotPdf)
    );
    let truncated = &good[..good.len() * 2 / 3];
    assert!(matches!(
        extract_pdf(truncated, &limits),
        Err(ExtractError::Corrupt(_))
    ));
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend(std::iter::repeat_n(b'#', 4000));
    garbage.extend(b"\n%%EOF\n");
    assert!(matches!(
        extract_pdf(&garbage, &limits),
        Err(ExtractError::Corrupt(_))
    ));
    assert_eq!(
        extract_pdf(&pdf::encrypted(), &limits),
        Err(ExtractError::Encrypted)
    );
    assert_eq!(
        extract_pdf(&pdf::image_only(2), &limits),
        Err(ExtractError::NoTextLayer)
    );
    assert_eq!(
        extract_pdf(&pdf::zero_pages(), &limits),
        Err(ExtractError::NoPages)
    );
    assert_eq!(
        extract_pdf(&pdf::bomb(4 * 1024 * 1024), &limits),
        Err(ExtractError::DecompressionBomb { limit: 1024 * 1024 })
    );
}

#[test]
fn text_files_must_be_utf8() {
    assert_eq!(
        extract(MediaKind::Text, b"caf\xe9 au lait", &limits()),
        Err(ExtractError::InvalidUtf8 { offset: 3 })
    );
    let md = extract(
        MediaKind::Markdown,
        "# Voice\n\nWe are   warm.\r\n".as_bytes(),
        &limits(),
    )
    .unwrap();
    assert_eq!(md.sections[0].text, "# Voice\n\nWe are warm.");
    assert_eq!(md.sections[0].page, 1);
}

/// A small corpus of valid PDFs to mutate: one plain, one with compressed streams.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        pdf::with_pages(&["Alpha beta gamma.", "Delta epsilon."]),
        pdf::image_only(1),
        pdf::encrypted(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Cut { at: usize },
    Splice { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        (
            any::<usize>(),
            prop::sample::select(vec![
                b"obj".to_vec(),
                b"endstream".to_vec(),
                b"/Length 999999".to_vec(),
                b"<<".to_vec(),
                b"/FlateDecode".to_vec(),
                b"9999 0 R".to_vec(),
                b"xref\n0 1\n".to_vec(),
                b"[[[[[[[[".to_vec(),
            ])
        )
            .prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match m {
            Mutation::Flip { at, byte } => bytes[at % n] = *byte,
            Mutation::Cut { at } => bytes.truncate(at % n),
            Mutation::Splice { at, bytes: extra } => {
                let at = at % n;
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(n);
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

proptest! {
    // Bounded so the suite stays fast; the mutations target PDF syntax, not just bytes.
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn mutated_pdfs_never_panic(seed in 0usize..3, mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(seeds()[seed].clone(), &mutations);
        let limits = limits();
        // catch_unwind inside the extractor turns a parser panic into Corrupt, so also
        // check that no such panic happened: the message would say so.
        match extract_pdf(&bytes, &limits) {
            Ok(doc) => prop_assert!(!doc.sections.is_empty()),
            Err(ExtractError::Corrupt(reason)) => {
                prop_assert!(!reason.contains("could not make sense"), "parser panicked");
            }
            Err(_) => {}
        }
    }
}

/// Peak resident memory of this process so far, in bytes (nextest runs each test in a
/// process of its own).
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// 2 MB per stream, 16 MB per document.
fn bomb_limits() -> ExtractLimits {
    ExtractLimits {
        max_decoded_stream_bytes: 2 * 1024 * 1024,
        max_decoded_document_bytes: 16 * 1024 * 1024,
        ..ExtractLimits::default()
    }
}

/// `bytes` are refused for decoding past the document limit, and reading them kept this
/// process's memory bounded.
fn assert_refused_as_document_bomb(bytes: &[u8], limits: &ExtractLimits) {
    assert_eq!(
        extract_pdf(bytes, limits),
        Err(ExtractError::DocumentBomb {
            limit: limits.max_decoded_document_bytes
        })
    );
    let peak = peak_rss();
    assert!(peak < 300 * 1024 * 1024, "peak RSS {} MB", peak >> 20);
}

#[test]
fn fonts_are_read_once_per_document_and_their_maps_count_against_its_limit() {
    let limits = bomb_limits();
    // 40 fonts on each of 300 pages sharing one ToUnicode map of 1 MB: 12 GB of decoding if
    // each page read its fonts afresh, 40 MB read once — past the 16 MB document limit.
    let bytes = pdf::shared_font_maps(300, 40, 1024 * 1024);
    assert!(bytes.len() < 256 * 1024, "{} bytes", bytes.len());
    assert_refused_as_document_bomb(&bytes, &limits);

    // Ten such fonts are read once for all 300 pages: 10 MB, within the limit (read per page
    // they would cost 3 GB and be refused).
    let doc = extract_pdf(&pdf::shared_font_maps(300, 10, 1024 * 1024), &limits).unwrap();
    assert_eq!(doc.page_count, 300);
    assert_eq!(doc.sections.len(), 300);
    assert!(
        doc.sections.iter().all(|s| s.text == "Hello"),
        "{:?}",
        doc.sections[0]
    );
}

#[test]
fn pages_sharing_one_stream_cannot_add_up_past_the_document_limit() {
    // 2,000 pages showing one 1 MB stream: 2 GB of page content (and ~2 GB of text) if
    // every page were read whole; the file itself is ~150 KB.
    let bytes = pdf::shared_stream(2000, 1024 * 1024);
    assert!(bytes.len() < 256 * 1024, "{} bytes", bytes.len());
    let limits = bomb_limits();
    assert_refused_as_document_bomb(&bytes, &limits);

    // Under the decoded limit, the text limit still holds.
    let limits = ExtractLimits {
        max_text_bytes: 4 * 1024 * 1024,
        ..limits
    };
    assert_eq!(
        extract_pdf(&pdf::shared_stream(12, 1024 * 1024), &limits),
        Err(ExtractError::TooMuchText {
            limit: 4 * 1024 * 1024
        })
    );
    assert_eq!(
        extract(MediaKind::Text, &vec![b'a'; 5 * 1024 * 1024], &limits),
        Err(ExtractError::TooMuchText {
            limit: 4 * 1024 * 1024
        })
    );
}
