//! Cuts extracted sections into overlapping chunks with `text-splitter`, one section at a
//! time so the splitter never sees one huge string; every chunk keeps its page range and
//! its ordinal within the document.

use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};

use crate::error::KnowledgeError;
use crate::extract::Section;
use crate::model::MediaKind;

/// A chunk before it is embedded and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkDraft {
    /// Position within the document, from 0, without gaps.
    pub ordinal: u32,
    pub page_start: u32,
    pub page_end: u32,
    pub text: String,
}

enum Splitter {
    Text(TextSplitter<text_splitter::Characters>),
    Markdown(MarkdownSplitter<text_splitter::Characters>),
}

/// A configured splitter: `size` and `overlap` are in characters, as stored on the
/// collection.
pub struct Chunker {
    splitter: Splitter,
}

impl Chunker {
    pub fn new(kind: MediaKind, size: usize, overlap: usize) -> Result<Self, KnowledgeError> {
        if size == 0 {
            return Err(KnowledgeError::InvalidCollection(
                "chunk_size must be positive".to_owned(),
            ));
        }
        let config = ChunkConfig::new(size)
            .with_overlap(overlap)
            .map_err(|e| KnowledgeError::InvalidCollection(e.to_string()))?;
        let splitter = match kind {
            MediaKind::Markdown => Splitter::Markdown(MarkdownSplitter::new(config)),
            MediaKind::Pdf | MediaKind::Text => Splitter::Text(TextSplitter::new(config)),
        };
        Ok(Self { splitter })
    }

    /// Chunks of one section; `next_ordinal` is the ordinal of the first one and is
    /// advanced past the last.
    pub fn chunk_section(&self, section: &Section, next_ordinal: &mut u32) -> Vec<ChunkDraft> {
        let pieces: Vec<&str> = match &self.splitter {
            Splitter::Text(s) => s.chunks(&section.text).collect(),
            Splitter::Markdown(s) => s.chunks(&section.text).collect(),
        };
        pieces
            .into_iter()
            .map(str::trim)
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                let ordinal = *next_ordinal;
                *next_ordinal += 1;
                ChunkDraft {
                    ordinal,
                    page_start: section.page,
                    page_end: section.page,
                    text: piece.to_owned(),
                }
            })
            .collect()
    }

    /// Chunks of every section, ordinals from 0.
    pub fn chunk_all(&self, sections: &[Section]) -> Vec<ChunkDraft> {
        let mut ordinal = 0;
        sections
            .iter()
            .flat_map(|s| self.chunk_section(s, &mut ordinal))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_pages_and_consecutive_ordinals() {
        let chunker = Chunker::new(MediaKind::Pdf, 200, 20).unwrap();
        let sections = vec![
            Section {
                page: 1,
                text: "Alpha sentence one. ".repeat(30),
            },
            Section {
                page: 2,
                text: "Beta sentence two. ".repeat(30),
            },
        ];
        let chunks = chunker.chunk_all(&sections);
        assert!(chunks.len() > 4);
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.ordinal as usize, i);
            assert!(chunk.text.chars().count() <= 200);
            let expected_page = if chunk.text.contains("Alpha") { 1 } else { 2 };
            assert_eq!(
                (chunk.page_start, chunk.page_end),
                (expected_page, expected_page)
            );
        }
    }

    #[test]
    fn overlap_must_be_smaller_than_size() {
        assert!(matches!(
            Chunker::new(MediaKind::Text, 100, 100),
            Err(KnowledgeError::InvalidCollection(_))
        ));
    }
}
