//! PDFs the tests build themselves with lopdf: known sentences on known pages, and each
//! kind of bad input.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

/// A PDF whose page `i + 1` shows the lines of `pages[i]` (lines split on '\n').
pub fn with_pages(pages: &[&str]) -> Vec<u8> {
    build(pages.iter().map(|text| text_content(text)).collect(), true)
}

/// A PDF whose pages only paint rectangles: no text layer, like a scan.
pub fn image_only(pages: usize) -> Vec<u8> {
    let content = Content {
        operations: vec![
            Operation::new("re", vec![72.into(), 72.into(), 400.into(), 600.into()]),
            Operation::new("f", vec![]),
        ],
    };
    build(vec![content.encode().unwrap(); pages], true)
}

/// A well-formed PDF with an empty page tree.
pub fn zero_pages() -> Vec<u8> {
    build(Vec::new(), false)
}

/// A PDF whose trailer declares standard-handler encryption.
pub fn encrypted() -> Vec<u8> {
    let mut doc = document(vec![text_content("Secret quarterly numbers")], false);
    let encrypt = doc.add_object(dictionary! {
        "Filter" => "Standard",
        "V" => 1,
        "R" => 2,
        "O" => Object::string_literal(vec![0x11u8; 32]),
        "U" => Object::string_literal(vec![0x22u8; 32]),
        "P" => -44,
    });
    doc.trailer.set("Encrypt", encrypt);
    doc.trailer.set(
        "ID",
        vec![
            Object::string_literal(vec![1u8; 16]),
            Object::string_literal(vec![1u8; 16]),
        ],
    );
    save(&mut doc)
}

/// A FlateDecode stream of `inflated_bytes` of spaces: a few KB deflated.
fn deflated_spaces(inflated_bytes: usize) -> Stream {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 16];
    let mut left = inflated_bytes;
    while left > 0 {
        let n = left.min(block.len());
        encoder.write_all(&block[..n]).unwrap();
        left -= n;
    }
    let compressed = encoder.finish().unwrap();
    Stream::new(dictionary! { "Filter" => "FlateDecode" }, compressed).with_compression(false)
}

/// One page whose content stream is `inflated_bytes` of spaces, deflated to a few KB.
pub fn bomb(inflated_bytes: usize) -> Vec<u8> {
    let mut doc = document(Vec::new(), false);
    add_page(&mut doc, deflated_spaces(inflated_bytes));
    save(&mut doc)
}

/// `pages` pages saying "Hello" whose resources also name `fonts` fonts sharing one
/// ToUnicode map that inflates to `inflated_bytes`: a few KB on disk, `pages × fonts ×
/// inflated_bytes` decoded if every page read its fonts afresh.
pub fn shared_font_maps(pages: usize, fonts: usize, inflated_bytes: usize) -> Vec<u8> {
    let mut doc = document(vec![text_content("Hello"); pages], false);
    let map = doc.add_object(deflated_spaces(inflated_bytes));
    let font_ids: Vec<_> = (0..fonts)
        .map(|_| {
            doc.add_object(dictionary! {
                "Type" => "Font",
                "Subtype" => "Type1",
                "BaseFont" => "Helvetica",
                "ToUnicode" => map,
            })
        })
        .collect();
    let pages_id = pages_id(&doc);
    let resources = doc
        .get_dictionary(pages_id)
        .unwrap()
        .get(b"Resources")
        .unwrap()
        .as_reference()
        .unwrap();
    let font_dict = doc
        .get_dictionary_mut(resources)
        .unwrap()
        .get_mut(b"Font")
        .unwrap()
        .as_dict_mut()
        .unwrap();
    for (i, id) in font_ids.into_iter().enumerate() {
        font_dict.set(format!("B{i}"), id);
    }
    save(&mut doc)
}

/// `pages` pages that all show one deflated content stream of about `inflated_bytes` of
/// text operators: a few KB on disk, `pages × inflated_bytes` if every page is read whole.
pub fn shared_stream(pages: usize, inflated_bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let line = b"(The quick brown fox jumps over the lazy dog again and again) Tj T*\n";
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(b"BT /F1 11 Tf 14 TL 72 760 Td\n")
        .unwrap();
    let mut written = 0;
    while written < inflated_bytes {
        encoder.write_all(line).unwrap();
        written += line.len();
    }
    encoder.write_all(b"ET\n").unwrap();
    let compressed = encoder.finish().unwrap();
    let mut doc = document(Vec::new(), false);
    let content_id = doc.add_object(
        Stream::new(dictionary! { "Filter" => "FlateDecode" }, compressed).with_compression(false),
    );
    let pages_id = pages_id(&doc);
    let kids: Vec<Object> = (0..pages)
        .map(|_| {
            doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            })
            .into()
        })
        .collect();
    let tree = doc.get_dictionary_mut(pages_id).unwrap();
    tree.set("Count", i64::try_from(kids.len()).unwrap());
    tree.set("Kids", kids);
    save(&mut doc)
}

fn text_content(text: &str) -> Vec<u8> {
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 11.into()]),
        Operation::new("TL", vec![14.into()]),
        Operation::new("Td", vec![72.into(), 760.into()]),
    ];
    for line in text.lines() {
        operations.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        operations.push(Operation::new("T*", vec![]));
    }
    operations.push(Operation::new("ET", vec![]));
    Content { operations }.encode().unwrap()
}

fn build(contents: Vec<Vec<u8>>, compress: bool) -> Vec<u8> {
    let mut doc = document(contents, compress);
    save(&mut doc)
}

fn document(contents: Vec<Vec<u8>>, compress: bool) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => Vec::<Object>::new(),
            "Count" => 0,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    for content in contents {
        add_page(&mut doc, Stream::new(Dictionary::new(), content));
    }
    if compress {
        doc.compress();
    }
    doc
}

fn add_page(doc: &mut Document, content: Stream) {
    let pages_id = pages_id(doc);
    let content_id = doc.add_object(content);
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
    });
    let pages = doc.get_dictionary_mut(pages_id).unwrap();
    let mut kids = pages.get(b"Kids").unwrap().as_array().unwrap().clone();
    kids.push(page_id.into());
    let count = i64::try_from(kids.len()).unwrap();
    pages.set("Kids", kids);
    pages.set("Count", count);
}

/// The page tree's root.
fn pages_id(doc: &Document) -> lopdf::ObjectId {
    doc.catalog()
        .unwrap()
        .get(b"Pages")
        .unwrap()
        .as_reference()
        .unwrap()
}

fn save(doc: &mut Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
