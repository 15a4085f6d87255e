//! The knowledge service end to end on a fresh database: upload, background ingestion,
//! search with citations, tenant isolation, failures with reasons, deduplication, deletes.

use std::sync::{Arc, Mutex};

use brain_knowledge::{
    CollectionId, DocumentStatus, EmbedderRegistry, IngestProgress, KnowledgeConfig,
    KnowledgeError, KnowledgeService, NewCollection, Retriever, SearchMode,
};
use brain_migrations::testing::TestDb;

use crate::fixtures::{self, settled, tenant};
use crate::pdf;

const PAGES: [&str; 4] = [
    "Welcome to the Acme brand handbook.\nThis handbook explains how we write.",
    "Our brand voice is warm, direct and never sarcastic.\nWe address readers as you.",
    "Refunds are issued within fourteen days of a return request.\nShipping fees are not refunded.",
    "The company mascot is a purple giraffe called Gerald.\nGerald appears on every packaging box.",
];

fn config() -> KnowledgeConfig {
    let mut config = KnowledgeConfig::default();
    config.extract.max_decoded_stream_bytes = 1024 * 1024;
    config.max_upload_bytes = 256 * 1024;
    config
}

async fn setup() -> (TestDb, KnowledgeService) {
    let db = TestDb::new().await.unwrap();
    let service = fixtures::service(&db, config());
    (db, service)
}

async fn collection(service: &KnowledgeService, tenant: brain_auth::TenantId) -> CollectionId {
    let mut new = NewCollection::named("Handbook");
    new.chunk_size = 200;
    new.chunk_overlap = 20;
    service.create_collection(tenant, new).await.unwrap().id
}

#[tokio::test]
async fn search_finds_the_right_page_with_citations() {
    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let handbook = collection(&service, acme).await;
    let upload = service
        .upload(
            acme,
            handbook,
            "Acme Handbook.pdf",
            "application/pdf",
            pdf::with_pages(&PAGES),
        )
        .await
        .unwrap();
    assert_eq!(upload.status, DocumentStatus::Queued);
    assert!(!upload.deduplicated);
    let doc = settled(&service, acme, upload.document_id).await;
    assert_eq!(doc.status, DocumentStatus::Ready, "{:?}", doc.error);
    assert_eq!((doc.pages, doc.pages_done), (4, 4));
    assert!(doc.chunks >= 4);
    assert_eq!(doc.title, "Acme Handbook");

    for (query, page) in [
        ("How long do refunds take?", 3),
        ("what animal is the mascot", 4),
        ("is our brand voice sarcastic?", 2),
    ] {
        for mode in [SearchMode::Hybrid, SearchMode::Vector] {
            let hits = service
                .search_with(acme, &[handbook], query, 3, mode)
                .await
                .unwrap();
            assert_eq!(hits[0].page, page, "{query} ({mode:?}): {hits:#?}");
            assert_eq!(hits[0].document_id, upload.document_id);
            assert_eq!(hits[0].title, "Acme Handbook");
        }
    }
    let text_hits = service
        .search_with(acme, &[handbook], "giraffe", 5, SearchMode::FullText)
        .await
        .unwrap();
    assert_eq!(text_hits.len(), 1);
    assert_eq!(text_hits[0].page, 4);

    let passages = service
        .retrieve(
            acme,
            &[handbook, CollectionId(uuid::Uuid::nil())],
            "refund deadline",
            2,
        )
        .await
        .unwrap();
    assert_eq!(passages[0].citation.page, 3);
    assert_eq!(passages[0].citation.document_id, upload.document_id);
    assert!(passages[0].citation.snippet.contains("Refunds are issued"));
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_chunks() {
    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let globex = tenant(&db, "globex").await;
    let acme_kb = collection(&service, acme).await;
    let globex_kb = collection(&service, globex).await;
    let acme_doc = service
        .upload(
            acme,
            acme_kb,
            "handbook.pdf",
            "application/pdf",
            pdf::with_pages(&PAGES),
        )
        .await
        .unwrap();
    settled(&service, acme, acme_doc.document_id).await;
    let globex_doc = service
        .upload(
            globex,
            globex_kb,
            "notes.txt",
            "text/plain",
            b"Globex sells industrial giraffe feed to zoos.".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        settled(&service, globex, globex_doc.document_id)
            .await
            .status,
        DocumentStatus::Ready
    );

    // Globex searching its own collection never gets Acme's giraffe page.
    for mode in [SearchMode::Hybrid, SearchMode::Vector, SearchMode::FullText] {
        let hits = service
            .search_with(globex, &[globex_kb], "purple giraffe mascot", 10, mode)
            .await
            .unwrap();
        assert!(!hits.is_empty());
        assert!(
            hits.iter().all(|h| h.document_id == globex_doc.document_id),
            "{mode:?}"
        );
    }
    // Naming Acme's collection from Globex is "not found", not a leak.
    let err = service
        .search(globex, acme_kb, "giraffe", 5)
        .await
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::CollectionNotFound(id) if id == acme_kb));
    assert!(
        service
            .retrieve(globex, &[acme_kb], "giraffe", 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        service.get_document(globex, acme_doc.document_id).await,
        Err(KnowledgeError::DocumentNotFound(_))
    ));
    assert!(matches!(
        service.delete_document(globex, acme_doc.document_id).await,
        Err(KnowledgeError::DocumentNotFound(_))
    ));
    // The app role under Globex's tenant sees none of Acme's chunk rows at all.
    let mut tx = db.app.begin().await.unwrap();
    brain_migrations::set_tenant(&mut tx, globex).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE document_id = $1")
        .bind(acme_doc.document_id.0)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 0);
}

#[tokio::test]
async fn every_bad_input_ends_failed_with_its_reason() {
    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let kb = collection(&service, acme).await;
    let good = pdf::with_pages(&PAGES);
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "notes.pdf",
            "application/pdf",
            b"just some words, not a PDF".to_vec(),
            "not a PDF",
        ),
        (
            "cut.pdf",
            "application/pdf",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "locked.pdf",
            "application/pdf",
            pdf::encrypted(),
            "encrypted",
        ),
        (
            "scan.pdf",
            "application/pdf",
            pdf::image_only(2),
            "no text layer",
        ),
        (
            "empty.pdf",
            "application/pdf",
            pdf::zero_pages(),
            "no pages",
        ),
        (
            "bomb.pdf",
            "application/pdf",
            pdf::bomb(8 * 1024 * 1024),
            "expands beyond",
        ),
        (
            "latin1.txt",
            "text/plain",
            b"caf\xe9".to_vec(),
            "not valid UTF-8",
        ),
    ];
    for (name, media_type, bytes, reason) in cases {
        let upload = service
            .upload(acme, kb, name, media_type, bytes)
            .await
            .unwrap();
        let doc = settled(&service, acme, upload.document_id).await;
        assert_eq!(doc.status, DocumentStatus::Failed, "{name}");
        let error = doc.error.unwrap_or_default();
        assert!(error.contains(reason), "{name}: {error}");
        assert_eq!(doc.chunks, 0, "{name}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing half-written");

    // Refused at the door: too large (413) and unsupported types (415) create nothing.
    let err = service
        .upload(
            acme,
            kb,
            "big.txt",
            "text/plain",
            vec![b'a'; 256 * 1024 + 1],
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        KnowledgeError::TooLarge {
            size: 262_145,
            limit: 262_144
        }
    ));
    let err = service
        .upload(acme, kb, "photo.png", "image/png", vec![1, 2, 3])
        .await
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::UnsupportedMediaType(_)));
    assert_eq!(service.list_documents(acme, kb).await.unwrap().len(), 7);
}

#[tokio::test]
async fn identical_reupload_is_deduplicated_and_deletes_cascade() {
    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let kb = collection(&service, acme).await;
    let bytes = b"# Brand voice\n\nWe write like a helpful friend.\n".to_vec();
    let first = service
        .upload(acme, kb, "voice.md", "text/markdown", bytes.clone())
        .await
        .unwrap();
    settled(&service, acme, first.document_id).await;
    let second = service
        .upload(
            acme,
            kb,
            "voice-copy.md",
            "application/octet-stream",
            bytes.clone(),
        )
        .await
        .unwrap();
    assert!(second.deduplicated);
    assert_eq!(second.document_id, first.document_id);
    assert_eq!(second.status, DocumentStatus::Ready);

    // The same bytes in another collection are a separate document.
    let mut other = NewCollection::named("Other");
    other.chunk_size = 500;
    let other = service.create_collection(acme, other).await.unwrap().id;
    let third = service
        .upload(acme, other, "voice.md", "", bytes)
        .await
        .unwrap();
    assert!(!third.deduplicated);
    settled(&service, acme, third.document_id).await;

    let chunks = |doc: uuid::Uuid| {
        let pool = db.owner.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chunks WHERE document_id = $1")
                .bind(doc)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(chunks(first.document_id.0).await > 0);
    service
        .delete_document(acme, first.document_id)
        .await
        .unwrap();
    assert_eq!(chunks(first.document_id.0).await, 0);
    assert!(chunks(third.document_id.0).await > 0);
    service.delete_collection(acme, other).await.unwrap();
    assert_eq!(chunks(third.document_id.0).await, 0);
    assert_eq!(service.list_collections(acme).await.unwrap().len(), 1);
}

#[tokio::test]
async fn ingest_reports_progress_for_the_cli() {
    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let kb = collection(&service, acme).await;
    let seen: Arc<Mutex<Vec<IngestProgress>>> = Arc::default();
    let sink = seen.clone();
    let report = service
        .ingest(
            acme,
            kb,
            "handbook.pdf",
            "application/pdf",
            pdf::with_pages(&PAGES),
            &move |p| sink.lock().unwrap().push(*p),
        )
        .await
        .unwrap();
    assert_eq!(report.status, DocumentStatus::Ready);
    assert_eq!(report.pages, 4);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 2);
    assert!(
        seen.windows(2)
            .all(|w| w[0].chunks_done <= w[1].chunks_done)
    );
    let last = seen.last().unwrap();
    assert_eq!(last.status, DocumentStatus::Ready);
    assert_eq!((last.pages_done, last.chunks_done), (4, report.chunks));

    let failed = service
        .ingest(
            acme,
            kb,
            "scan.pdf",
            "application/pdf",
            pdf::image_only(1),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(failed.status, DocumentStatus::Failed);
    assert!(failed.error.unwrap().contains("no text layer"));
}

#[tokio::test]
async fn collections_validate_embedder_and_dimension() {
    let db = TestDb::new().await.unwrap();
    let acme = tenant(&db, "acme").await;
    let service = fixtures::service(&db, config());
    let mut wide = NewCollection::named("Wide");
    wide.dimension = 1536;
    assert!(matches!(
        service.create_collection(acme, wide).await,
        Err(KnowledgeError::InvalidCollection(_))
    ));
    let mut remote = NewCollection::named("Remote");
    remote.embedder = "openai:text-embedding-3-small".into();
    assert!(matches!(
        service.create_collection(acme, remote).await,
        Err(KnowledgeError::EmbedderUnavailable { .. })
    ));
    let kb = collection(&service, acme).await;
    assert!(matches!(
        service
            .create_collection(acme, NewCollection::named("Handbook"))
            .await,
        Err(KnowledgeError::CollectionExists(_))
    ));
    assert!(matches!(
        service.search(acme, kb, "   ", 5).await,
        Err(KnowledgeError::EmptyQuery)
    ));
    // A service whose registry lacks the collection's embedder says so clearly.
    let bare = KnowledgeService::new(db.app.clone(), EmbedderRegistry::new(), config());
    let err = bare.search(acme, kb, "refunds", 5).await.unwrap_err();
    assert!(err.to_string().contains("local:all-minilm-l6-v2"), "{err}");
}

/// An embedder that never answers: ingestion hangs in it as it would in a process that died.
struct Hung {
    id: String,
    dimension: usize,
}

#[async_trait::async_trait]
impl brain_knowledge::Embedder for Hung {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>, brain_knowledge::EmbedError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn collections_refuse_chunk_sizes_that_would_explode_an_upload() {
    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    for size in [0, 1, 99, 10_001] {
        let mut new = NewCollection::named(format!("Tiny {size}"));
        new.chunk_size = size;
        new.chunk_overlap = 0;
        let err = service.create_collection(acme, new).await.unwrap_err();
        assert!(
            matches!(&err, KnowledgeError::InvalidCollection(m) if m.contains("chunk_size")),
            "{size}: {err}"
        );
    }
    let mut new = NewCollection::named("Smallest");
    new.chunk_size = 100;
    new.chunk_overlap = 0;
    service.create_collection(acme, new).await.unwrap();
}

/// A file that kills the process ingesting it (three times here: the embedder hangs, as
/// a process that died mid-document looks to the others) is failed with a reason on the
/// next sweep, not claimed again forever.
#[tokio::test]
async fn a_document_whose_ingestion_dies_three_times_is_failed_not_reclaimed() {
    use brain_knowledge::Embedder;
    use std::time::Duration;

    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let kb = collection(&service, acme).await;
    let model = fixtures::local_model();
    let dying = || {
        let hung = Arc::new(Hung {
            id: model.id().to_owned(),
            dimension: model.dimension(),
        });
        KnowledgeService::new(db.app.clone(), EmbedderRegistry::new().with(hung), config())
    };
    let attempts = || {
        let pool = db.owner.clone();
        async move {
            // `pages > 0`: the attempt got past extraction and wrote its progress, so it is
            // hung in the embedder and writes nothing more (a claim racing a progress write
            // would see a fresh `updated_at` and rightly skip the document).
            sqlx::query_as::<_, (i32, String, bool)>(
                "SELECT attempts, status, pages > 0 FROM documents ORDER BY created_at DESC LIMIT 1",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let wait_for_attempt = |n: i32| async move {
        for _ in 0..200 {
            if attempts().await == (n, "processing".to_owned(), true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("attempt {n} never started: {:?}", attempts().await);
    };
    let first = dying();
    let id = first
        .upload(
            acme,
            kb,
            "Crasher.pdf",
            "application/pdf",
            pdf::with_pages(&PAGES),
        )
        .await
        .unwrap()
        .document_id;
    wait_for_attempt(1).await;
    let (second, third) = (dying(), dying());
    assert_eq!(second.resume_stalled(Duration::ZERO).await.unwrap(), 1);
    wait_for_attempt(2).await;
    assert_eq!(third.resume_stalled(Duration::ZERO).await.unwrap(), 1);
    wait_for_attempt(3).await;

    // The third attempt stalled too: the next sweep fails it instead of resuming.
    assert_eq!(service.resume_stalled(Duration::ZERO).await.unwrap(), 0);
    let doc = service.get_document(acme, id).await.unwrap();
    assert_eq!(doc.status, DocumentStatus::Failed);
    let reason = doc.error.unwrap_or_default();
    assert!(reason.contains("stopped 3 times"), "{reason}");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM document_sources")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(kept, 0, "its bytes are dropped");
    assert_eq!(service.resume_stalled(Duration::ZERO).await.unwrap(), 0);
    assert_eq!(attempts().await.0, 3, "never started again");
}

#[tokio::test]
async fn an_upload_whose_ingestion_stalled_is_resumed_from_its_kept_bytes() {
    use brain_knowledge::Embedder;
    use std::time::Duration;

    let (db, service) = setup().await;
    let acme = tenant(&db, "acme").await;
    let kb = collection(&service, acme).await;
    let model = fixtures::local_model();
    let hung = Arc::new(Hung {
        id: model.id().to_owned(),
        dimension: model.dimension(),
    });
    let dead = KnowledgeService::new(db.app.clone(), EmbedderRegistry::new().with(hung), config());
    let upload = dead
        .upload(
            acme,
            kb,
            "Acme Handbook.pdf",
            "application/pdf",
            pdf::with_pages(&PAGES),
        )
        .await
        .unwrap();
    let id = upload.document_id;
    let mut status = DocumentStatus::Queued;
    for _ in 0..200 {
        status = service.get_document(acme, id).await.unwrap().status;
        if status == DocumentStatus::Processing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, DocumentStatus::Processing);
    let kept = || {
        let pool = db.owner.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM document_sources WHERE document_id = $1",
            )
            .bind(id.0)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(kept().await, 1, "the bytes are kept while ingestion runs");

    // Recently touched is not stalled; and the stuck process's own sweep leaves the
    // document it still holds alone.
    assert_eq!(
        service
            .resume_stalled(Duration::from_secs(300))
            .await
            .unwrap(),
        0
    );
    assert_eq!(dead.resume_stalled(Duration::ZERO).await.unwrap(), 0);

    // Another process takes it over from the kept bytes, once.
    assert_eq!(service.resume_stalled(Duration::ZERO).await.unwrap(), 1);
    let doc = settled(&service, acme, id).await;
    assert_eq!(doc.status, DocumentStatus::Ready, "{:?}", doc.error);
    assert_eq!((doc.pages, doc.pages_done), (4, 4));
    let hits = service
        .search_with(acme, &[kb], "giraffe", 5, SearchMode::FullText)
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].page, 4);
    assert_eq!(kept().await, 0, "the bytes go once ingestion ends");
    assert_eq!(service.resume_stalled(Duration::ZERO).await.unwrap(), 0);

    // A document that fails has its bytes dropped too.
    let bad = service
        .upload(
            acme,
            kb,
            "broken.pdf",
            "application/pdf",
            b"%PDF-1.7 not really".to_vec(),
        )
        .await
        .unwrap();
    let failed = settled(&service, acme, bad.document_id).await;
    assert_eq!(failed.status, DocumentStatus::Failed);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM document_sources")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// One ingestion turn, one per tenant: a tenant with three documents waiting does not hold
/// up another tenant's one — it is served as soon as the running document ends.
#[tokio::test]
async fn a_busy_tenant_does_not_hold_up_another_tenants_document() {
    let db = TestDb::new().await.unwrap();
    let mut config = config();
    config.ingest_concurrency = 1;
    config.ingest_per_tenant = 1;
    let service = fixtures::service(&db, config);
    let (busy, other) = (tenant(&db, "busy").await, tenant(&db, "other").await);
    let (busy_docs, other_docs) = (
        collection(&service, busy).await,
        collection(&service, other).await,
    );
    // Long enough (~60 chunks) that the first document is still running while the rest queue.
    let text = |n: usize| {
        (0..240)
            .map(|i| format!("Manual {n}, note {i}: keep the tone friendly and the claims exact."))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut queued = Vec::new();
    for n in 0..3 {
        let upload = service
            .upload(
                busy,
                busy_docs,
                &format!("manual-{n}.txt"),
                "text/plain",
                text(n).into_bytes(),
            )
            .await
            .unwrap();
        queued.push(upload.document_id);
    }
    let late = service
        .upload(
            other,
            other_docs,
            "brief.txt",
            "text/plain",
            text(9).into_bytes(),
        )
        .await
        .unwrap();

    let late = settled(&service, other, late.document_id).await;
    assert_eq!(late.status, DocumentStatus::Ready, "{:?}", late.error);
    let mut busy_ready = Vec::new();
    for id in queued {
        let doc = settled(&service, busy, id).await;
        assert_eq!(doc.status, DocumentStatus::Ready, "{:?}", doc.error);
        busy_ready.push(doc.updated_at);
    }
    busy_ready.sort();
    // Served second: after the busy tenant's running document, before its two waiting ones.
    assert!(
        busy_ready[0] < late.updated_at && late.updated_at < busy_ready[1],
        "busy tenant's documents ready at {busy_ready:?}, the other's at {}",
        late.updated_at
    );
}
