//! The knowledge base: PDF/text ingest, chunking, the embedding-model trait and its
//! implementations, the pgvector store and hybrid retrieval with page-level citations.
//!
//! Invariant: nothing in this crate ever sees a connector credential.
